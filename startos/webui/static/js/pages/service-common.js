// What the Services list, a service's page and the Sideload page share: the status a service
// shows (the server's statusInfo.summary), its pill, install phases, a confirmation dialog and
// formatting helpers.
import { html, useEffect, useRef, useState } from "../html.js";
import { currentLanguage, t } from "../i18n.js";
import { hrefTo } from "../router.js";
import { Button, Icon, Spinner } from "../ui.js";

export function servicePath(id) {
  return hrefTo("services", id);
}

// -- what a package entry says -------------------------------------------------------------------

export function manifestOf(pkg) {
  return (pkg && pkg.stateInfo && pkg.stateInfo.manifest) || {};
}

export function titleOf(id, pkg) {
  return manifestOf(pkg).title || id;
}

/** A manifest text that may be a string or a {locale: text} map. */
export function localized(value) {
  if (!value) return "";
  if (typeof value === "string") return value;
  return value[currentLanguage()] || value.en || value.en_US || Object.values(value)[0] || "";
}

/** Share of the install done (0..1) from its phases, counting partial {done, total} phases. */
export function installFraction(installingInfo) {
  const progress = installingInfo && installingInfo.progress;
  if (!progress) return null;
  const phases = progress.phases || [];
  if (phases.length) {
    const sum = phases.reduce((acc, phase) => acc + phaseFraction(phase.progress), 0);
    return sum / phases.length;
  }
  return phaseFraction(progress.overall);
}

function phaseFraction(value) {
  if (value === true) return 1;
  if (value && typeof value === "object" && value.total) return Math.min(1, value.done / value.total);
  return 0;
}

// Every value of statusInfo.summary (startos/protocol/status.py): its tone, whether it is on its
// way somewhere (the dot pulses), its words (literal t() calls, so the catalog check sees every key).
const STATUSES = {
  installing: { busy: true, tone: "accent", label: () => t("status.installing") },
  updating: { busy: true, tone: "accent", label: () => t("status.updating") },
  restoring: { busy: true, tone: "accent", label: () => t("status.restoring") },
  removing: { busy: true, tone: "accent", label: () => t("status.removing") },
  "backing-up": { busy: true, tone: "accent", label: () => t("status.backingUp") },
  stopped: { tone: "neutral", label: () => t("status.stopped") },
  starting: { busy: true, tone: "warning", label: () => t("status.starting") },
  running: { tone: "success", label: () => t("status.running") },
  stopping: { busy: true, tone: "warning", label: () => t("status.stopping") },
  restarting: { busy: true, tone: "warning", label: () => t("status.restarting") },
  degraded: { tone: "warning", label: () => t("status.degraded") },
  waiting: { tone: "warning", label: () => t("status.waiting") },
  "task-required": { tone: "warning", label: () => t("status.taskRequired") },
  "crash-looping": { tone: "danger", label: () => t("status.crashLooping") },
  error: { tone: "danger", label: () => t("status.error") },
  unknown: { tone: "neutral", label: () => t("status.unknown") },
};

/** The install jobs: a progress bar instead of the service's controls. */
const TRANSITIONAL = ["installing", "updating", "restoring", "removing"];

/**
 * The one status a service shows, as the server wrote it (statusInfo.summary); "unknown" when it
 * wrote none (an older server) or one this dashboard has no words for. Nothing is recomputed here.
 * While installing, updating or restoring, ``fraction`` is the share done (stateInfo.installingInfo).
 */
export function statusOf(pkg) {
  const summary = pkg && pkg.statusInfo && pkg.statusInfo.summary;
  const kind = Object.hasOwn(STATUSES, summary) ? summary : "unknown";
  if (!TRANSITIONAL.includes(kind)) return { kind, transitional: false, fraction: null };
  const fraction = kind === "removing" ? null : installFraction(pkg.stateInfo && pkg.stateInfo.installingInfo);
  return { kind, transitional: true, fraction };
}

/** Whether the service is meant to run (what Stop and Restart act on): statusInfo.desired only. */
export function wantsToRun(pkg) {
  const desired = pkg && pkg.statusInfo && pkg.statusInfo.desired;
  return desired === "running" || desired === "restarting";
}

/** Running, whether or not a dependency is down (what "only when running" actions need). */
export function isRunning(status) {
  return status.kind === "running" || status.kind === "degraded";
}

/** Not running and not on its way (what "only when stopped" actions need). */
export function isStopped(status) {
  return ["stopped", "task-required", "waiting"].includes(status.kind);
}

export function statusLabel(status) {
  const word = (STATUSES[status.kind] || STATUSES.unknown).label();
  return status.fraction == null ? word : `${word} ${formatPercent(status.fraction)}`;
}

export function StatusPill({ status, size }) {
  const { tone, busy } = STATUSES[status.kind] || STATUSES.unknown;
  return html`<span class=${`status status-${tone}${busy ? " status-busy" : ""}${size === "lg" ? " status-lg" : ""}`}
    data-testid="status" data-status=${status.kind}>
    <span class="status-dot" aria-hidden="true"></span>${statusLabel(status)}
  </span>`;
}

export function ServiceIcon({ pkg, size = "md" }) {
  return html`<span class=${`service-icon service-icon-${size}`}>
    ${pkg && pkg.icon ? html`<img src=${pkg.icon} alt="" />` : html`<${Icon} name="package" size=${size === "lg" ? 32 : 22} />`}
  </span>`;
}

// Icons this part of the dashboard needs beyond ui.js's set (same 24x24 stroke style).
const GLYPHS = {
  play: html`<path d="M7 4.5v15l12.5-7.5z" />`,
  stop: html`<rect x="6" y="6" width="12" height="12" rx="1.5" />`,
  restart: html`<path d="M20 11a8 8 0 1 0-2.3 5.7" /><path d="M20 4v7h-7" />`,
  file: html`<path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z" /><path d="M14 3v5h5" />`,
  pause: html`<path d="M8 5v14M16 5v14" />`,
  arrowDown: html`<path d="M12 5v14" /><path d="M6 13l6 6 6-6" />`,
};

export function Glyph({ name, size = 18 }) {
  if (!GLYPHS[name]) return html`<${Icon} name=${name} size=${size} />`;
  return html`<svg class="icon" width=${size} height=${size} viewBox="0 0 24 24" fill="none" stroke="currentColor"
    stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">${GLYPHS[name]}</svg>`;
}

/** ui.js's Button, with an icon from either set. */
export function ActionButton({ glyph, variant = "primary", size, loading = false, children, class: cls = "", ...rest }) {
  const classes = ["btn", `btn-${variant}`, size ? `btn-${size}` : "", cls].filter(Boolean).join(" ");
  return html`<button ...${rest} type=${rest.type || "button"} class=${classes} disabled=${rest.disabled || loading}
    aria-busy=${loading ? "true" : null}>
    ${loading ? html`<${Spinner} size="sm" />` : glyph ? html`<${Glyph} name=${glyph} size=${size === "sm" ? 16 : 18} />` : null}
    ${children ? html`<span>${children}</span>` : null}
  </button>`;
}

// -- install phases ------------------------------------------------------------------------------

export function phaseLabel(name) {
  switch (name) {
    case "upload": return t("install.phase.upload");
    case "verify": return t("install.phase.verify");
    case "unpack": return t("install.phase.unpack");
    case "init": return t("install.phase.init");
    default: return name;
  }
}

/** done | active | pending from a progress value (true, false, null, or {done, total}). */
export function phaseState(value) {
  if (value === true) return "done";
  if (value === null || value === undefined) return "pending";
  return "active";
}

/** A vertical list of steps: [{name, state, fraction?, detail?}]. */
export function Steps({ steps }) {
  return html`<ol class="steps-v">
    ${steps.map((step) => html`<li key=${step.name} class=${`step-v step-${step.state}`} data-testid=${`step-${step.name}`}
        data-state=${step.state}>
      <span class="step-v-mark" aria-hidden="true">
        ${step.state === "done" ? html`<${Icon} name="check" size=${16} />`
          : step.state === "failed" ? html`<${Icon} name="close" size=${16} />`
          : step.state === "active" ? html`<span class="spinner spinner-sm"></span>` : null}
      </span>
      <div class="step-v-main">
        <div class="step-v-head">
          <span class="step-v-label">${phaseLabel(step.name)}</span>
          ${step.detail ? html`<span class="muted small step-v-detail">${step.detail}</span>` : null}
        </div>
        ${step.state === "active" && step.fraction !== undefined
          ? html`<${Meter} fraction=${step.fraction} label=${phaseLabel(step.name)} testid=${`progress-${step.name}`} />` : null}
      </div>
    </li>`)}
  </ol>`;
}

/** The install phases of a package entry as Steps. */
export function installSteps(installingInfo) {
  const phases = (installingInfo && installingInfo.progress && installingInfo.progress.phases) || [];
  return phases.map((phase) => ({
    name: phase.name,
    state: phaseState(phase.progress),
    fraction: phase.progress && typeof phase.progress === "object" && phase.progress.total
      ? phase.progress.done / phase.progress.total : undefined,
  }));
}

/** A progress bar; fraction null draws an indeterminate one. */
export function Meter({ fraction, label, tone, testid }) {
  if (fraction == null) {
    return html`<div class="progress progress-indeterminate" role="progressbar" aria-label=${label || null} data-testid=${testid || null}><span></span></div>`;
  }
  const percent = Math.max(0, Math.min(100, Math.round(fraction * 1000) / 10));
  return html`<div class=${`meter${tone ? ` meter-${tone}` : ""}`} role="progressbar" aria-label=${label || null}
      aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(percent)} data-testid=${testid || null}>
    <span style=${`width: ${percent}%`}></span>
  </div>`;
}

// -- a modal confirmation ------------------------------------------------------------------------

/** A native modal <dialog> opened while mounted: its ref, and a cancel handler for Escape and close
 * buttons that calls ``onClose`` unless ``busy``. */
export function useModal(busy, onClose) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog && dialog.open && dialog.close();
  }, []);
  const cancel = (event) => {
    event.preventDefault();
    if (!busy) onClose();
  };
  return [ref, cancel];
}

/** A native modal <dialog>: focus stays inside, Escape cancels (unless busy). Mount it to open it. */
export function ConfirmDialog({ title, children, confirmLabel, danger = false, busy = false, onConfirm, onCancel, testid }) {
  const [ref, cancel] = useModal(busy, onCancel);
  return html`<dialog ref=${ref} class="dialog" aria-labelledby="dialog-title" onCancel=${cancel} data-testid=${testid || null}>
    <form method="dialog" onSubmit=${(event) => { event.preventDefault(); onConfirm(); }}>
      <h2 id="dialog-title">${title}</h2>
      <div class="dialog-body">${children}</div>
      <div class="dialog-actions">
        <${Button} variant="ghost" onClick=${cancel} disabled=${busy}>${t("common.cancel")}</${Button}>
        <${Button} type="submit" variant=${danger ? "danger" : "primary"} loading=${busy} data-testid="confirm">${confirmLabel}</${Button}>
      </div>
    </form>
  </dialog>`;
}

// -- formatting ----------------------------------------------------------------------------------

export function formatPercent(fraction, digits = 0) {
  return new Intl.NumberFormat(currentLanguage(), { style: "percent", maximumFractionDigits: digits }).format(fraction);
}

const UNITS = ["byte", "kilobyte", "megabyte", "gigabyte", "terabyte"];

/** Bytes in decimal units (1 MB = 1,000,000 bytes), as file managers show file sizes. */
export function formatBytes(bytes) {
  if (bytes == null || Number.isNaN(Number(bytes))) return "—";
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return new Intl.NumberFormat(currentLanguage(), {
    style: "unit", unit: UNITS[unit], unitDisplay: "short", maximumFractionDigits: unit === 0 ? 0 : value < 10 ? 1 : 0,
  }).format(value);
}

export function formatNumber(value, digits = 0) {
  return new Intl.NumberFormat(currentLanguage(), { maximumFractionDigits: digits }).format(value);
}

/** Re-render every `period` ms while `active` (countdowns). */
export function useNow(active, period = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return undefined;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), period);
    return () => clearInterval(timer);
  }, [active, period]);
  return now;
}
