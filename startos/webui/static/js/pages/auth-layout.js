// The frame of the screens shown before login: brand, a language picker, one centred card.
import { html } from "../html.js";
import { currentLanguage, setLanguage, t } from "../i18n.js";
import { LanguageSelect } from "../ui.js";

export function AuthLayout({ wide = false, children }) {
  return html`<div class="auth">
    <header class="auth-top">
      <div class="brand brand-light">
        <img src="/static/img/logo.svg" alt="" width="32" height="32" />
        <span>StartOS</span>
      </div>
      <${LanguageSelect} id="auth-language" compact value=${currentLanguage()} onChange=${setLanguage} />
    </header>
    <main class=${wide ? "auth-card auth-card-wide" : "auth-card"}>${children}</main>
    <footer class="auth-foot">${t("auth.footer")}</footer>
  </div>`;
}
