// A service's actions: the sidebar listing them (grouped, greyed when not available), and the flow
// that runs one: its warning, its generated form (package.action.get-input), the run itself
// (package.action.run) and the result dialog with copy, reveal and QR for each value.
import { InputForm, mergeValue } from "../form.js";
import { html, useEffect, useState } from "../html.js";
import { t } from "../i18n.js";
import { call } from "../rpc.js";
import { Alert, Button, Card, Icon, Spinner, errorText } from "../ui.js";
import { ConfirmDialog, isRunning, isStopped, statusOf, titleOf, useModal } from "./service-common.js";

// -- shared pieces: a modal, copying, QR codes ---------------------------------------------------

/** A native modal <dialog> holding anything; Escape or the close button calls onClose (unless busy). */
export function Modal({ title, children, onClose, busy = false, wide = false, testid }) {
  const [ref, cancel] = useModal(busy, onClose);
  return html`<dialog ref=${ref} class=${`dialog${wide ? " dialog-wide" : ""}`} aria-label=${title} onCancel=${cancel}
      data-testid=${testid || null}>
    <div class="dialog-inner">
      <div class="dialog-head">
        <h2>${title}</h2>
        <button type="button" class="icon-btn" onClick=${cancel} disabled=${busy} aria-label=${t("common.close")}
          title=${t("common.close")} data-testid="dialog-close"><${Icon} name="close" size=${18} /></button>
      </div>
      <div class="dialog-body">${children}</div>
    </div>
  </dialog>`;
}

/** Put text on the clipboard; without the Clipboard API (plain HTTP on another host) use a selection. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch {
      done = false;
    }
    area.remove();
    return done;
  }
}

export function CopyTextButton({ text, testid = "copy" }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    if (await copyText(text)) {
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    }
  };
  return html`<button type="button" class="icon-btn" onClick=${copy} title=${copied ? t("common.copied") : t("common.copy")}
    aria-label=${copied ? t("common.copied") : t("common.copy")} data-testid=${testid} data-copied=${copied ? "true" : null}>
    <${Icon} name=${copied ? "check" : "copy"} size=${16} /></button>`;
}

function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** A QR code of `text`, drawn by the server (util.qr) and shown as an image, never as markup. */
export function QrImage({ text, label }) {
  const [src, setSrc] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let stale = false;
    setSrc(null);
    setError(null);
    call("util.qr", { text })
      .then((result) => { if (!stale) setSrc(`data:image/svg+xml;base64,${base64(result.svg)}`); })
      .catch((err) => { if (!stale) setError(errorText(err)); });
    return () => { stale = true; };
  }, [text]);
  if (error) return html`<p class="field-error" data-testid="qr-error">${error}</p>`;
  if (!src) return html`<div class="qr qr-loading"><${Spinner} label=${t("common.loading")} /></div>`;
  return html`<img class="qr" src=${src} alt=${label || t("qr.alt")} data-testid="qr-image" />`;
}

// A QR glyph in the same 24x24 stroke style as ui.js's icons.
function QrGlyph() {
  return html`<svg class="icon" width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8"
    stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">
    <rect x="3" y="3" width="7" height="7" rx="1" /><rect x="14" y="3" width="7" height="7" rx="1" /><rect x="3" y="14" width="7" height="7" rx="1" />
    <path d="M14 14h3v3h-3zM20 14v.01M14 20h.01M17 20h4v-3" /></svg>`;
}

export function QrButton({ pressed, onClick }) {
  return html`<button type="button" class=${`icon-btn${pressed ? " pressed" : ""}`} onClick=${onClick} aria-pressed=${pressed ? "true" : "false"}
    title=${t("qr.show")} aria-label=${t("qr.show")} data-testid="qr"><${QrGlyph} /></button>`;
}

export function RevealButton({ shown, onClick }) {
  return html`<button type="button" class="icon-btn" onClick=${onClick} title=${shown ? t("common.hide") : t("common.reveal")}
    aria-label=${shown ? t("common.hide") : t("common.reveal")} data-testid="reveal"><${Icon} name=${shown ? "eyeOff" : "eye"} size=${16} /></button>`;
}

// -- the result of a run -------------------------------------------------------------------------

function ResultValue({ item }) {
  const [shown, setShown] = useState(!item.masked);
  const [qr, setQr] = useState(false);
  return html`<li class="result-value" data-testid="result-value" data-name=${item.name}>
    <div class="row-between">
      <strong>${item.name}</strong>
      <span class="result-value-actions">
        ${item.masked ? html`<${RevealButton} shown=${shown} onClick=${() => setShown(!shown)} />` : null}
        ${item.copyable ? html`<${CopyTextButton} text=${item.value} />` : null}
        ${item.qr ? html`<${QrButton} pressed=${qr} onClick=${() => setQr(!qr)} />` : null}
      </span>
    </div>
    ${item.description ? html`<p class="muted small">${item.description}</p>` : null}
    <code class="result-text" data-testid="result-text" data-masked=${shown ? "false" : "true"}>${shown ? item.value : "•".repeat(12)}</code>
    ${qr ? html`<${QrImage} text=${item.value} label=${item.name} />` : null}
  </li>`;
}

export function ResultDialog({ actionName, result, onClose }) {
  const values = (result && result.values) || [];
  return html`<${Modal} title=${(result && result.title) || actionName} onClose=${onClose} testid="result-dialog">
    ${result && result.message ? html`<p class="result-message" data-testid="result-message">${result.message}</p>` : null}
    ${!result ? html`<${Alert} kind="success">${t("actions.completed", { action: actionName })}</${Alert}>` : null}
    ${values.length ? html`<ul class="result-values">${values.map((item, i) => html`<${ResultValue} key=${i} item=${item} />`)}</ul>` : null}
    <div class="dialog-actions"><${Button} onClick=${onClose} data-testid="result-done">${t("actions.done")}</${Button}></div>
  </${Modal}>`;
}

// -- running one action --------------------------------------------------------------------------

/**
 * The whole run of one action, from its warning to its result. request = {packageId, actionId,
 * prefill?}; prefill (a task's partial input) is laid over the action's current input.
 */
export function ActionFlow({ state, request, onClose }) {
  const { packageId, actionId, prefill } = request;
  const pkg = state && state.packageData && state.packageData[packageId];
  const action = (pkg && pkg.actions && pkg.actions[actionId]) || { name: actionId };
  const [stage, setStage] = useState(action.warning ? "confirm" : "loading"); // confirm|loading|form|running|result|failed
  const [form, setForm] = useState(null); // {spec, value}
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);

  const run = async (input) => {
    const params = { packageId, actionId };
    if (input !== undefined) params.input = input;
    const answer = await call("package.action.run", params);
    setResult(answer || null);
    setStage("result");
  };
  const begin = async () => {
    setStage(action.hasInput ? "loading" : "running");
    setError(null);
    try {
      if (action.hasInput) {
        const got = await call("package.action.get-input", { packageId, actionId });
        if (got && got.spec) {
          setForm({ spec: got.spec, value: mergeValue(got.value || {}, prefill || {}) });
          setStage("form");
          return;
        }
      }
      await run(undefined);
    } catch (err) {
      setError(errorText(err));
      setStage("failed");
    }
  };
  useEffect(() => {
    if (!action.warning) begin();
  }, []);

  const name = action.name || actionId;
  const service = titleOf(packageId, pkg);
  if (stage === "confirm") {
    return html`<${ConfirmDialog} title=${t("actions.confirmTitle", { action: name })} confirmLabel=${t("actions.run")}
        onConfirm=${begin} onCancel=${onClose} testid="action-warning">
      <${Alert} kind="warning">${action.warning}</${Alert}>
    </${ConfirmDialog}>`;
  }
  if (stage === "form") {
    return html`<${Modal} title=${name} onClose=${onClose} wide testid="action-form-dialog">
      <p class="muted small">${service}${action.description ? ` · ${action.description}` : ""}</p>
      <${InputForm} spec=${form.spec} initial=${form.value} onSubmit=${run} onCancel=${onClose}
        submitLabel=${t("actions.submit")} prefix=${`action-${actionId}`} testid="action-form" />
    </${Modal}>`;
  }
  if (stage === "result") return html`<${ResultDialog} actionName=${name} result=${result} onClose=${onClose} />`;
  if (stage === "failed") {
    return html`<${Modal} title=${name} onClose=${onClose} testid="action-failed">
      <${Alert} kind="error" testid="action-error">${error}</${Alert}>
      <div class="dialog-actions"><${Button} variant="secondary" onClick=${onClose}>${t("common.close")}</${Button}></div>
    </${Modal}>`;
  }
  return html`<${Modal} title=${name} onClose=${onClose} busy testid="action-busy">
    <div class="loading" role="status"><${Spinner} label=${stage === "running" ? t("actions.running") : t("common.loading")} />
      <span class="muted">${stage === "running" ? t("actions.running") : t("common.loading")}</span></div>
  </${Modal}>`;
}

// -- the sidebar ---------------------------------------------------------------------------------

/** Why an action cannot run now, or null when it can. */
export function unavailableReason(action, pkg) {
  const visibility = action.visibility;
  if (visibility && typeof visibility === "object" && "disabled" in visibility) return visibility.disabled || t("actions.disabled");
  // An unknown status (no summary from the server) blocks nothing: the server decides.
  const status = statusOf(pkg);
  if (status.kind === "unknown") return null;
  if (action.allowedStatuses === "only-running" && !isRunning(status)) return t("actions.onlyRunning");
  if (action.allowedStatuses === "only-stopped" && !isStopped(status)) return t("actions.onlyStopped");
  return null;
}

/** Visible actions of a package as [[group or "", [[id, action], ...]], ...], ungrouped first. */
export function groupedActions(pkg) {
  const groups = new Map();
  for (const [actionId, action] of Object.entries((pkg && pkg.actions) || {})) {
    if (action.visibility === "hidden") continue;
    const group = action.group || "";
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push([actionId, action]);
  }
  return [...groups.entries()].sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : 0));
}

export function ActionsCard({ id, pkg, state }) {
  const [request, setRequest] = useState(null);
  const groups = groupedActions(pkg);
  if (!groups.length) return null;
  return html`<${Card} title=${t("actions.title")} icon="sparkle" testid="actions" class="actions-card">
    ${groups.map(([group, items]) => html`<div class="action-group" key=${group} data-testid="action-group" data-group=${group}>
      ${group ? html`<h3 class="action-group-title">${group}</h3>` : null}
      <ul class="action-list">
        ${items.map(([actionId, action]) => {
          const reason = unavailableReason(action, pkg);
          return html`<li key=${actionId}>
            <button type="button" class="action-item" disabled=${Boolean(reason)} title=${reason || action.description || null}
                onClick=${() => setRequest({ packageId: id, actionId })} data-testid="action" data-id=${actionId}
                data-available=${reason ? "false" : "true"}>
              <span class="action-item-main">
                <strong>${action.name || actionId}</strong>
                ${action.description ? html`<span class="muted small">${action.description}</span>` : null}
                ${reason ? html`<span class="action-reason small" data-testid="action-reason">${reason}</span>` : null}
              </span>
              ${action.warning ? html`<${Icon} name="warning" size=${16} class="action-warn" />` : null}
              <${Icon} name="arrowRight" size=${16} class="action-go" />
            </button>
          </li>`;
        })}
      </ul>
    </div>`)}
    ${request ? html`<${ActionFlow} state=${state} request=${request} onClose=${() => setRequest(null)} />` : null}
  </${Card}>`;
}
