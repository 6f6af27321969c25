// Marketplace and Updates: what exists today, said plainly.
import { html } from "../html.js";
import { t } from "../i18n.js";
import { Card, EmptyState } from "../ui.js";

export function MarketplacePage() {
  return html`<${EmptyState} icon="marketplace" title=${t("marketplace.title")}>${t("marketplace.text")}</${EmptyState}>`;
}

export function UpdatesPage({ state }) {
  const info = (state && state.serverInfo) || {};
  const packages = Object.keys((state && state.packageData) || {});
  return html`<div class="stack">
    <${Card} title=${t("updates.system")} icon="server">
      <div class="row-between">
        <div><strong>StartOS ${info.version || ""}</strong><p class="muted small">${t("updates.systemText")}</p></div>
        <span class="pill pill-muted">${t("setup.laterRelease")}</span>
      </div>
    </${Card}>
    <${Card} title=${t("updates.services")} icon="package">
      <p class="muted">${packages.length ? t("updates.servicesLater") : t("updates.noServices")}</p>
    </${Card}>
  </div>`;
}
