// The dashboard's entry point: decides between the setup wizard, the login page and the
// logged-in shell, and keeps a hash route (#/services, #/system, ...) for the shell's pages.
import { html, render, useCallback, useEffect, useState } from "./html.js";
import { initialLanguage, setLanguage, t, useLanguage } from "./i18n.js";
import { LoginPage } from "./pages/login.js";
import { SetupWizard } from "./pages/setup.js";
import { Shell } from "./pages/shell.js";
import { call, onUnauthorized } from "./rpc.js";
import { Button, Icon, Spinner, errorText } from "./ui.js";

function currentRoute() {
  return location.hash.replace(/^#\/?/, "").split("/")[0];
}

/** The whole route, sub-pages included ("services/hello-world"). */
function currentPath() {
  return location.hash.replace(/^#\/?/, "");
}

function useRoute() {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

function showRoute(route) {
  // replaceState: moving between wizard, login and shell is not something to go "back" to.
  history.replaceState(null, "", `#/${route}`);
  dispatchEvent(new HashChangeEvent("hashchange"));
}

const AUTH_ROUTES = ["login", "setup"];

function App() {
  useLanguage(); // re-render everything when the language changes
  const route = useRoute();
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
    if (phase === "setup" || phase === "login") {
      const here = currentRoute();
      if (!AUTH_ROUTES.includes(here) && here) setReturnTo(currentPath());
      showRoute(phase);
    } else if (phase === "app" && (AUTH_ROUTES.includes(currentRoute()) || !currentRoute())) {
      showRoute(returnTo || "services");
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
