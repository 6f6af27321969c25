// The dashboard's entry point: decides between the setup wizard, the login page and the
// logged-in shell; the hash route (#/services, #/system, ...; router.js) picks the shell's page.
import { html, render, useCallback, useEffect, useState } from "./html.js";
import { initialLanguage, setLanguage, t, useLanguage } from "./i18n.js";
import { LoginPage } from "./pages/login.js";
import { SetupWizard } from "./pages/setup.js";
import { Shell } from "./pages/shell.js";
import { currentRoute, navigate, useRoute } from "./router.js";
import { call, onUnauthorized } from "./rpc.js";
import { Button, Icon, Spinner, errorText } from "./ui.js";

const AUTH_ROUTES = ["login", "setup"];

function App() {
  useLanguage(); // re-render everything when the language changes
  const route = useRoute().page;
  const [phase, setPhase] = useState("boot"); // boot | unreachable | setup | login | app
  const [bootError, setBootError] = useState(null);
  const [returnTo, setReturnTo] = useState(null);

  const boot = useCallback(async () => {
    setPhase("boot");
    setBootError(null);
    try {
      const { status } = await call("setup.status", {});
      setPhase(status === "needs-setup" ? "setup" : "app");
    } catch (err) {
      setBootError(err);
      setPhase("unreachable");
    }
  }, []);

  useEffect(() => {
    boot();
    // Code 34 from any call: the session is gone (logged out elsewhere, killed, expired).
    return onUnauthorized(() => setPhase((p) => (p === "app" ? "login" : p)));
  }, [boot]);

  useEffect(() => {
    // replace: moving between wizard, login and shell is not something to go "back" to.
    const here = currentRoute();
    if (phase === "setup" || phase === "login") {
      if (!AUTH_ROUTES.includes(here.page) && here.page) setReturnTo(here.path);
      navigate(phase, { replace: true });
    } else if (phase === "app" && (AUTH_ROUTES.includes(here.page) || !here.page)) {
      navigate(returnTo || "services", { replace: true });
      setReturnTo(null);
    }
  }, [phase]);

  if (phase === "boot") {
    return html`<div class="splash" role="status"><${Spinner} size="lg" label=${t("common.loading")} /></div>`;
  }
  if (phase === "unreachable") {
    return html`<div class="splash">
      <div class="splash-card">
        <${Icon} name="warning" size=${32} />
        <h1>${t("boot.unreachable")}</h1>
        <p class="muted">${errorText(bootError)}</p>
        <${Button} onClick=${boot}>${t("common.retry")}</${Button}>
      </div>
    </div>`;
  }
  if (phase === "setup") return html`<${SetupWizard} onDone=${() => setPhase("login")} />`;
  if (phase === "login") {
    return html`<${LoginPage} onLoggedIn=${() => setPhase("app")} onNeedsSetup=${() => setPhase("setup")} />`;
  }
  return html`<${Shell} route=${route} onLoggedOut=${() => setPhase("login")} />`;
}

setLanguage(initialLanguage()).finally(() => render(html`<${App} />`, document.getElementById("app")));
