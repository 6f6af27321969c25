// A service's health checks (statusInfo.health), why it cannot start (statusInfo.blocked) and its
// dependencies (currentDependencies with their live state in statusInfo.dependencies).
import { html } from "../html.js";
import { messageText, t } from "../i18n.js";
import { Alert, Card, Icon } from "../ui.js";
import { ServiceIcon, servicePath, titleOf } from "./service-common.js";

export function healthLabel(result) {
  switch (result) {
    case "success": return t("health.success");
    case "failure": return t("health.failure");
    case "starting": return t("health.starting");
    case "waiting": return t("health.waiting");
    case "loading": return t("health.loading");
    case "disabled": return t("health.disabled");
    default: return result;
  }
}

// The same tones as the service status pills: done is green, in progress amber, failed red.
const HEALTH_TONES = { success: "success", failure: "danger", starting: "warning", waiting: "warning", loading: "accent", disabled: "neutral" };
const BUSY = ["starting", "waiting", "loading"];

export function HealthChip({ result }) {
  const tone = HEALTH_TONES[result] || "neutral";
  return html`<span class=${`status status-sm status-${tone}${BUSY.includes(result) ? " status-busy" : ""}`}
      data-testid="health-result" data-result=${result}>
    <span class="status-dot" aria-hidden="true"></span>${healthLabel(result)}</span>`;
}

export function HealthList({ health }) {
  const checks = Object.entries(health || {});
  if (!checks.length) return null;
  return html`<${Card} title=${t("health.title")} icon="shield" testid="health">
    <ul class="checks">
      ${checks.map(([checkId, check]) => html`<li key=${checkId} data-testid="health-check" data-id=${checkId}>
        <${HealthChip} result=${check.result} />
        <div class="check-main">
          <strong data-testid="health-name">${check.name || checkId}</strong>
          ${check.message ? html`<p class=${`small ${check.result === "failure" ? "check-failure" : "muted"}`}
            data-testid="health-message">${messageText(check.message)}</p>` : null}
        </div>
      </li>`)}
    </ul>
  </${Card}>`;
}

/**
 * Why a service that should run has not started, as the server writes it: ``statusInfo.blocked``
 * is ``{reason}`` or null (ServiceActor._set_blocked), and the reason is, word for word, the
 * message of the dependency it waits on (``statusInfo.dependencies[id].message``) or a required
 * task's. Returns {reason, packageId (the dependency, or null)}, or null when nothing blocks it.
 * The one place that reads this shape: change it here if the server's changes.
 */
export function blockedBy(pkg) {
  const status = (pkg && pkg.statusInfo) || {};
  const blocked = status.blocked;
  if (!blocked || !blocked.reason) return null;
  const waitsOn = Object.entries(status.dependencies || {})
    .find(([, dep]) => dep && dep.satisfied === false && dep.message != null && messageText(dep.message) === messageText(blocked.reason));
  return { reason: blocked.reason, packageId: waitsOn ? waitsOn[0] : null };
}

/** Why a service that should run cannot start yet: a dependency (linked when installed), or a required task. */
export function BlockedAlert({ pkg, state }) {
  const blocked = blockedBy(pkg);
  if (!blocked) return null;
  const other = blocked.packageId && state && state.packageData && state.packageData[blocked.packageId];
  return html`<${Alert} kind="warning" title=${t("blocked.title")} testid="blocked">
    <span data-testid="blocked-reason">${messageText(blocked.reason)}</span>
    ${other ? html` · <a class="link" href=${servicePath(blocked.packageId)} data-testid="blocked-link">
      ${t("blocked.open", { service: titleOf(blocked.packageId, other) })}</a>` : null}
  </${Alert}>`;
}

function kindLabel(dep) {
  return dep.kind === "running" ? t("deps.mustRun") : t("deps.mustExist");
}

export function Dependencies({ pkg, state }) {
  const deps = Object.entries((pkg && pkg.currentDependencies) || {});
  if (!deps.length) return null;
  const live = (pkg.statusInfo && pkg.statusInfo.dependencies) || {};
  const installed = (state && state.packageData) || {};
  return html`<${Card} title=${t("deps.title")} icon="package" testid="dependencies">
    <ul class="deps">
      ${deps.map(([depId, dep]) => {
        const other = installed[depId];
        const now = live[depId];
        const title = dep.title || titleOf(depId, other);
        return html`<li key=${depId} class="dep" data-testid="dependency" data-id=${depId}
            data-satisfied=${now ? String(Boolean(now.satisfied)) : null}>
          <${ServiceIcon} pkg=${other} />
          <div class="dep-main">
            <div class="dep-head">
              ${other ? html`<a href=${servicePath(depId)} data-testid="dependency-link"><strong>${title}</strong></a>`
                : html`<strong>${title}</strong>`}
              <span class=${`pill ${dep.optional ? "pill-muted" : "pill-accent"}`} data-testid="dependency-kind">
                ${dep.optional ? t("deps.optional") : t("deps.required")}</span>
              ${dep.versionRange ? html`<code class="version" data-testid="dependency-range">${dep.versionRange}</code>` : null}
            </div>
            ${dep.description ? html`<p class="muted small">${dep.description}</p>` : null}
            <p class="muted small">${kindLabel(dep)}${other ? "" : ` · ${t("deps.notInstalled")}`}</p>
          </div>
          <div class="dep-state" data-testid="dependency-state">
            ${!now ? html`<span class="muted small">—</span>`
              : now.satisfied ? html`<span class="dep-ok"><${Icon} name="success" size=${18} />${t("deps.satisfied")}</span>`
              : html`<span class="dep-bad"><${Icon} name="warning" size=${18} />${messageText(now.message) || t("deps.unsatisfied")}</span>`}
          </div>
        </li>`;
      })}
    </ul>
  </${Card}>`;
}
