// Small shared pieces of the interface: icons, buttons, fields, alerts, empty states.
import { html, useLayoutEffect, useRef, useState } from "./html.js";
import { LANGUAGES, t } from "./i18n.js";
import { Code } from "./rpc.js";

// Simple 24x24 stroke icons drawn for this dashboard.
const ICONS = {
  services: html`<rect x="3" y="3" width="7" height="7" rx="1.5" /><rect x="14" y="3" width="7" height="7" rx="1.5" /><rect x="3" y="14" width="7" height="7" rx="1.5" /><rect x="14" y="14" width="7" height="7" rx="1.5" />`,
  marketplace: html`<path d="M4 9l1.5-5h13L20 9" /><path d="M4 9h16v2a3 3 0 0 1-5.33 1.9A3 3 0 0 1 12 14a3 3 0 0 1-2.67-1.1A3 3 0 0 1 4 11z" /><path d="M5 14v6h14v-6" />`,
  sideload: html`<path d="M12 16V4" /><path d="M7 9l5-5 5 5" /><path d="M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3" />`,
  updates: html`<path d="M20 11a8 8 0 1 0-2.3 5.7" /><path d="M20 4v7h-7" />`,
  system: html`<circle cx="12" cy="12" r="3" /><path d="M12 2v3M12 19v3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M2 12h3M19 12h3M4.9 19.1L7 17M17 7l2.1-2.1" />`,
  notifications: html`<path d="M6 8a6 6 0 0 1 12 0c0 7 3 8 3 8H3s3-1 3-8" /><path d="M10 20a2 2 0 0 0 4 0" />`,
  logout: html`<path d="M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3" /><path d="M10 17l-5-5 5-5" /><path d="M5 12h11" />`,
  menu: html`<path d="M4 6h16M4 12h16M4 18h16" />`,
  close: html`<path d="M6 6l12 12M18 6L6 18" />`,
  check: html`<path d="M5 12.5l4.5 4.5L19 7.5" />`,
  checkAll: html`<path d="M2 12.5l4.5 4.5L16 7.5" /><path d="M12 16l1 1 9.5-9.5" />`,
  info: html`<circle cx="12" cy="12" r="9" /><path d="M12 11v5" /><path d="M12 7.5v.01" />`,
  warning: html`<path d="M12 3l9.5 17h-19z" /><path d="M12 10v4" /><path d="M12 17.5v.01" />`,
  error: html`<circle cx="12" cy="12" r="9" /><path d="M9 9l6 6M15 9l-6 6" />`,
  success: html`<circle cx="12" cy="12" r="9" /><path d="M8 12.5l2.5 2.5L16 9.5" />`,
  eye: html`<path d="M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12z" /><circle cx="12" cy="12" r="3" />`,
  eyeOff: html`<path d="M3 3l18 18" /><path d="M10.6 5.1A10 10 0 0 1 12 5c6.5 0 10 7 10 7a17 17 0 0 1-3.2 4.1M6.6 6.6C3.7 8.4 2 12 2 12s3.5 7 10 7a9.7 9.7 0 0 0 5.4-1.6" /><path d="M9.9 9.9a3 3 0 0 0 4.2 4.2" />`,
  download: html`<path d="M12 4v12" /><path d="M7 11l5 5 5-5" /><path d="M4 20h16" />`,
  trash: html`<path d="M4 7h16" /><path d="M9 7V4h6v3" /><path d="M6 7l1 13h10l1-13" />`,
  copy: html`<rect x="8" y="8" width="12" height="12" rx="2" /><path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2" />`,
  server: html`<rect x="3" y="4" width="18" height="7" rx="2" /><rect x="3" y="13" width="18" height="7" rx="2" /><path d="M7 7.5h.01M7 16.5h.01" />`,
  key: html`<circle cx="8" cy="15" r="4" /><path d="M11 12l9-9" /><path d="M16 7l3 3" />`,
  shield: html`<path d="M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z" /><path d="M9 12l2 2 4-4" />`,
  globe: html`<circle cx="12" cy="12" r="9" /><path d="M3 12h18" /><path d="M12 3a14 14 0 0 1 0 18a14 14 0 0 1 0-18" />`,
  monitor: html`<rect x="3" y="4" width="18" height="12" rx="2" /><path d="M8 20h8M12 16v4" />`,
  plus: html`<path d="M12 5v14M5 12h14" />`,
  arrowRight: html`<path d="M5 12h14" /><path d="M13 6l6 6-6 6" />`,
  arrowLeft: html`<path d="M19 12H5" /><path d="M11 6l-6 6 6 6" />`,
  restore: html`<path d="M4 12a8 8 0 1 0 2.3-5.7" /><path d="M4 4v5h5" /><path d="M12 8v4l3 2" />`,
  transfer: html`<path d="M4 8h14" /><path d="M14 4l4 4-4 4" /><path d="M20 16H6" /><path d="M10 12l-4 4 4 4" />`,
  sparkle: html`<path d="M12 3l1.9 5.1L19 10l-5.1 1.9L12 17l-1.9-5.1L5 10l5.1-1.9z" /><path d="M19 16l.8 2.2L22 19l-2.2.8L19 22l-.8-2.2L16 19l2.2-.8z" />`,
  package: html`<path d="M12 3l8 4.5v9L12 21l-8-4.5v-9z" /><path d="M4 7.5l8 4.5 8-4.5" /><path d="M12 12v9" />`,
};

export function Icon({ name, size = 20, class: cls = "" }) {
  return html`<svg class=${`icon ${cls}`} width=${size} height=${size} viewBox="0 0 24 24" fill="none"
    stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"
    aria-hidden="true" focusable="false">${ICONS[name]}</svg>`;
}

export function Spinner({ size = "md", label }) {
  return html`<span class=${`spinner spinner-${size}`} role=${label ? "status" : null} aria-label=${label || null}></span>`;
}

export function Button({ variant = "primary", size, loading = false, icon, children, class: cls = "", ...rest }) {
  const classes = ["btn", `btn-${variant}`, size ? `btn-${size}` : "", cls].filter(Boolean).join(" ");
  return html`<button ...${rest} type=${rest.type || "button"} class=${classes} disabled=${rest.disabled || loading}
    aria-busy=${loading ? "true" : null}>
    ${loading ? html`<${Spinner} size="sm" />` : icon ? html`<${Icon} name=${icon} size=${18} />` : null}
    ${children ? html`<span>${children}</span>` : null}
  </button>`;
}

export function Alert({ kind = "info", title, children, testid }) {
  const icon = { info: "info", success: "success", warning: "warning", error: "error" }[kind];
  return html`<div class=${`alert alert-${kind}`} role=${kind === "error" ? "alert" : "status"} data-testid=${testid || null}>
    <${Icon} name=${icon} />
    <div>${title ? html`<strong>${title}</strong>` : null}${children ? html`<div>${children}</div>` : null}</div>
  </div>`;
}

/** A labelled control with its hint or error; the control (children, with ``id``) is described by them. */
export function Field({ id, label, hint, error, children }) {
  const ref = useRef(null);
  const described = error ? `${id}-error` : hint ? `${id}-hint` : null;
  useLayoutEffect(() => {
    // The control is the caller's markup: link it here rather than at every call site.
    const control = ref.current && ref.current.querySelector(`#${CSS.escape(id)}`);
    if (!control) return;
    if (described) control.setAttribute("aria-describedby", described);
    else control.removeAttribute("aria-describedby");
  });
  return html`<div class=${`field${error ? " field-invalid" : ""}`} ref=${ref}>
    <label for=${id}>${label}</label>
    ${children}
    ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : hint ? html`<p class="field-hint" id=${`${id}-hint`}>${hint}</p>` : null}
  </div>`;
}

export function PasswordInput({ id, value, onInput, autocomplete = "current-password", invalid, ...rest }) {
  const [shown, setShown] = useState(false);
  return html`<div class="input-group">
    <input id=${id} class="input" type=${shown ? "text" : "password"} value=${value} autocomplete=${autocomplete}
      aria-invalid=${invalid ? "true" : null} spellcheck="false" onInput=${(e) => onInput(e.currentTarget.value)} ...${rest} />
    <button type="button" class="input-addon" onClick=${() => setShown(!shown)}
      aria-label=${shown ? t("common.hidePassword") : t("common.showPassword")} title=${shown ? t("common.hidePassword") : t("common.showPassword")}>
      <${Icon} name=${shown ? "eyeOff" : "eye"} size=${18} />
    </button>
  </div>`;
}

export function EmptyState({ icon, title, children, action }) {
  return html`<div class="empty">
    <div class="empty-icon"><${Icon} name=${icon} size=${32} /></div>
    <h2>${title}</h2>
    ${children ? html`<p>${children}</p>` : null}
    ${action || null}
  </div>`;
}

export function Card({ title, description, icon, actions, children, class: cls = "", testid }) {
  return html`<section class=${`card ${cls}`} data-testid=${testid || null}>
    ${title ? html`<header class="card-header">
      ${icon ? html`<span class="card-icon"><${Icon} name=${icon} /></span>` : null}
      <div class="card-heading"><h2>${title}</h2>${description ? html`<p>${description}</p>` : null}</div>
      ${actions ? html`<div class="card-actions">${actions}</div>` : null}
    </header>` : null}
    <div class="card-body">${children}</div>
  </section>`;
}

export function LanguageSelect({ id = "language", value, onChange, disabled, compact = false }) {
  return html`<select id=${id} class=${compact ? "select select-compact" : "select"} value=${value} disabled=${disabled}
    aria-label=${compact ? t("common.language") : null}
    onChange=${(e) => onChange(e.currentTarget.value)}>
    ${Object.entries(LANGUAGES).map(([code, name]) => html`<option value=${code}>${name}</option>`)}
  </select>`;
}

/** A readable sentence for an RPC failure: our words for the codes we know, else the server's. */
export function errorText(err) {
  if (!err) return "";
  if (err.code === Code.NETWORK) return t("error.network");
  if (err.code === Code.BAD_RESPONSE) return t("error.badResponse");
  if (err.code === Code.METHOD_NOT_FOUND) return t("error.notAvailable");
  const details = err.details || err.message || "";
  return details ? details.charAt(0).toUpperCase() + details.slice(1) : t("error.unknown");
}

/** Offer text as a file download (a Blob URL, so it works offline and over plain HTTP). */
export function downloadText(filename, text, type = "text/plain") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.style.display = "none";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function CopyButton({ text }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      // no clipboard (plain HTTP on another host): the text stays selectable
    }
  };
  return html`<button type="button" class="icon-btn" onClick=${copy} title=${copied ? t("common.copied") : t("common.copy")}
    aria-label=${copied ? t("common.copied") : t("common.copy")}><${Icon} name=${copied ? "check" : "copy"} size=${16} /></button>`;
}

/** "My Cool Server" -> "my-cool-server", the same rule as the server's (startos/identity.py). */
export function hostnameLabel(name) {
  const ascii = name.normalize("NFKD").replace(/\p{M}/gu, "").replace(/[^\x00-\x7f]/g, "");
  return ascii.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
}

export function localAddress(hostname) {
  if (!hostname) return "";
  return hostname.includes(".") ? hostname : `${hostname}.local`;
}

/** The account a password form is for, hidden: lets password managers file the password. */
export function UsernameHint({ value }) {
  return html`<input type="text" class="visually-hidden" name="username" autocomplete="username" value=${value || "startos"}
    tabindex="-1" aria-hidden="true" readonly />`;
}
