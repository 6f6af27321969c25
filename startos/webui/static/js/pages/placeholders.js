// Services, Marketplace, Sideload and Updates: what exists today, said plainly.
import { html } from "../html.js";
import { t } from "../i18n.js";
import { Card, EmptyState, Icon } from "../ui.js";

function stateOf(pkg) {
  return (pkg && pkg.stateInfo && pkg.stateInfo.state) || "installed";
}

export function ServicesPage({ state }) {
  const packages = Object.entries((state && state.packageData) || {});
  if (!packages.length) {
    return html`<${EmptyState} icon="package" title=${t("services.emptyTitle")}
      action=${html`<a class="btn btn-primary" href="#/marketplace"><${Icon} name="marketplace" size=${18} /><span>${t("services.browse")}</span></a>`}>
      ${t("services.emptyText")}
    </${EmptyState}>`;
  }
  return html`<div class="grid">
    ${packages.map(([id, pkg]) => html`<div class="service" key=${id}>
      <div class="service-icon">${pkg.icon ? html`<img src=${pkg.icon} alt="" />` : html`<${Icon} name="package" />`}</div>
      <div><strong>${(pkg.stateInfo && pkg.stateInfo.manifest && pkg.stateInfo.manifest.title) || id}</strong>
        <span class="muted small">${t(`services.state.${stateOf(pkg)}`)}</span></div>
    </div>`)}
  </div>`;
}

export function MarketplacePage() {
  return html`<${EmptyState} icon="marketplace" title=${t("marketplace.title")}>${t("marketplace.text")}</${EmptyState}>`;
}

export function SideloadPage() {
  return html`<div class="stack">
    <div class="dropzone dropzone-disabled" aria-disabled="true">
      <${Icon} name="sideload" size=${32} />
      <strong>${t("sideload.title")}</strong>
      <span>${t("sideload.text")}</span>
      <span class="pill pill-muted">${t("setup.laterRelease")}</span>
    </div>
  </div>`;
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
