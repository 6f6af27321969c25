// Services: every installed package with its live status; #/services/<id> opens its own page.
import { html, useEffect } from "../html.js";
import { t } from "../i18n.js";
import { EmptyState, Icon } from "../ui.js";
import { useRoute } from "../router.js";
import {
  Meter, ServiceIcon, StatusPill, isRunning, localized, manifestOf, servicePath, statusOf, titleOf,
} from "./service-common.js";
import { ServicePage } from "./service.js";
import { TasksList } from "./tasks.js";

function ServiceRow({ id, pkg }) {
  const manifest = manifestOf(pkg);
  const status = statusOf(pkg);
  const newVersion = pkg.stateInfo && pkg.stateInfo.installingInfo && pkg.stateInfo.installingInfo.newVersion;
  return html`<li>
    <a class="service-row" href=${servicePath(id)} data-testid="service-row" data-id=${id}>
      <${ServiceIcon} pkg=${pkg} />
      <div class="service-row-main">
        <div class="service-row-title">
          <strong>${titleOf(id, pkg)}</strong>
          <span class="version">${manifest.version || ""}${status.kind === "updating" && newVersion ? ` → ${newVersion}` : ""}</span>
        </div>
        <span class="service-row-text">${localized(manifest.description && manifest.description.short)}</span>
        ${status.transitional && status.kind !== "removing"
          ? html`<${Meter} fraction=${status.fraction} label=${t("services.installProgress")} />` : null}
      </div>
      <${StatusPill} status=${status} />
      <${Icon} name="arrowRight" size=${18} class="service-row-go" />
    </a>
  </li>`;
}

function ServicesList({ state }) {
  const packages = Object.entries((state && state.packageData) || {})
    .sort(([a, x], [b, y]) => titleOf(a, x).localeCompare(titleOf(b, y)));
  if (!packages.length) {
    return html`<${EmptyState} icon="package" title=${t("services.emptyTitle")}
      action=${html`<div class="empty-actions">
        <a class="btn btn-primary" href="#/sideload" data-testid="empty-sideload"><${Icon} name="sideload" size=${18} /><span>${t("sideload.title")}</span></a>
        <a class="btn btn-secondary" href="#/marketplace"><${Icon} name="marketplace" size=${18} /><span>${t("services.browse")}</span></a>
      </div>`}>
      ${t("services.emptyText")}
    </${EmptyState}>`;
  }
  const running = packages.filter(([, pkg]) => isRunning(statusOf(pkg))).length;
  return html`<div class="stack">
    <${TasksList} state=${state} />
    <div class="toolbar">
      <p class="muted" data-testid="services-summary">${t("services.summary", { count: packages.length, running })}</p>
      <div class="toolbar-actions">
        <a class="btn btn-secondary btn-sm" href="#/sideload"><${Icon} name="sideload" size=${16} /><span>${t("nav.sideload")}</span></a>
      </div>
    </div>
    <ul class="service-list" data-testid="services">
      ${packages.map(([id, pkg]) => html`<${ServiceRow} key=${id} id=${id} pkg=${pkg} />`)}
    </ul>
  </div>`;
}

export function ServicesPage({ state }) {
  const [id] = useRoute().rest;
  useEffect(() => scrollTo(0, 0), [id]); // a new page starts at its top
  if (id) return html`<${ServicePage} key=${id} id=${id} state=${state} />`;
  return html`<${ServicesList} state=${state} />`;
}
