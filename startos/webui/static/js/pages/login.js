// The login page: one password field and errors a person can act on.
import { html, useEffect, useState } from "../html.js";
import { t } from "../i18n.js";
import { Code, call } from "../rpc.js";
import { Alert, Button, Field, PasswordInput, UsernameHint, errorText } from "../ui.js";
import { AuthLayout } from "./auth-layout.js";

// The server forgets failed attempts after 20 s without one (REFERENCE.md §4); trying earlier
// would restart that wait, so the button stays disabled meanwhile.
const RATE_LIMIT_SECONDS = 20;

export function LoginPage({ onLoggedIn, onNeedsSetup }) {
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null); // {kind: "incorrect" | "rate" | "other", text}
  const [waitUntil, setWaitUntil] = useState(0);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    const el = document.getElementById("login-password");
    if (el) el.focus();
  }, []);

  useEffect(() => {
    if (waitUntil <= Date.now()) return undefined;
    const timer = setInterval(() => {
      setNow(Date.now());
      if (Date.now() >= waitUntil) clearInterval(timer);
    }, 250);
    return () => clearInterval(timer);
  }, [waitUntil]);

  const waiting = Math.max(0, Math.ceil((waitUntil - now) / 1000));

  useEffect(() => {
    if (waiting === 0 && error && error.kind === "rate") setError(null); // the wait is over
  }, [waiting]);

  const submit = async (e) => {
    e.preventDefault();
    if (!password || busy || waiting) return;
    setBusy(true);
    setError(null);
    try {
      await call("auth.login", { password, ephemeral: false });
      setPassword("");
      onLoggedIn();
      return;
    } catch (err) {
      if (err.code === Code.UNINITIALIZED) return onNeedsSetup();
      if (err.code === Code.INCORRECT_PASSWORD) {
        setError({ kind: "incorrect", text: t("login.incorrect") });
        setPassword("");
      } else if (err.code === Code.RATE_LIMITED) {
        setError({ kind: "rate", text: t("login.rateLimited") });
        setWaitUntil(Date.now() + RATE_LIMIT_SECONDS * 1000);
        setNow(Date.now());
      } else {
        setError({ kind: "other", text: errorText(err) });
      }
    } finally {
      setBusy(false);
    }
    const el = document.getElementById("login-password");
    if (el) el.focus();
  };

  return html`<${AuthLayout}>
    <form class="login" onSubmit=${submit} novalidate>
      <h1>${t("login.title")}</h1>
      <p class="lead">${t("login.intro")}</p>
      <${UsernameHint} value=${location.hostname} />
      <${Field} id="login-password" label=${t("login.password")}>
        <${PasswordInput} id="login-password" value=${password} onInput=${setPassword}
          invalid=${error && error.kind === "incorrect"} />
      </${Field}>
      ${error ? html`<${Alert} kind=${error.kind === "rate" ? "warning" : "error"} testid="login-error">
        ${error.text}
        ${error.kind === "rate" && waiting ? html`<span class="wait-hint" data-testid="login-wait"> ${t("login.waitHint", { seconds: waiting })}</span>` : null}
      </${Alert}>` : null}
      <${Button} type="submit" class="btn-block" loading=${busy} disabled=${!password || waiting > 0}>
        ${t("login.submit")}</${Button}>
      <p class="muted small center forgot">${t("login.forgot")} <code>start-cli auth reset-password</code></p>
    </form>
  </${AuthLayout}>`;
}
