// Tasks: what services ask of you (api-issue6 §3, tasks[replayId] on the *requesting* package's
// entry, naming the target package and action). Listed on the Services page (all of them) and on a
// service's page (its own, and those other services made for it). The status a task gives a
// service ("Task required") is the server's (statusInfo.summary), not worked out here.
import { html, useState } from "../html.js";
import { messageText, t } from "../i18n.js";
import { call } from "../rpc.js";
import { Alert, Button, Card, errorText } from "../ui.js";
import { ConfirmDialog, ServiceIcon, servicePath, titleOf } from "./service-common.js";
import { ActionFlow } from "./service-actions.js";

const SEVERITY_ORDER = { critical: 0, important: 1, optional: 2 };
const SEVERITY_TONES = { critical: "danger", important: "warning", optional: "accent" };

export function severityLabel(severity) {
  switch (severity) {
    case "critical": return t("tasks.critical");
    case "important": return t("tasks.important");
    case "optional": return t("tasks.optional");
    default: return severity;
  }
}

/**
 * Active tasks as [{requester, replayId, entry}], most severe first. With `forPackage`: the ones
 * that package made, and the ones others made for it.
 */
export function activeTasks(state, forPackage = null) {
  const out = [];
  for (const [requester, pkg] of Object.entries((state && state.packageData) || {})) {
    for (const [replayId, entry] of Object.entries((pkg && pkg.tasks) || {})) {
      if (!entry || !entry.active || !entry.task) continue;
      if (forPackage && requester !== forPackage && entry.task.packageId !== forPackage) continue;
      out.push({ requester, replayId, entry });
    }
  }
  return out.sort((a, b) => (SEVERITY_ORDER[a.entry.task.severity] ?? 3) - (SEVERITY_ORDER[b.entry.task.severity] ?? 3)
    || String(a.entry.createdAt || "").localeCompare(String(b.entry.createdAt || "")));
}

function TaskRow({ state, requester, replayId, entry, onRun, onDismiss, busy }) {
  const task = entry.task;
  const data = (state && state.packageData) || {};
  const source = data[requester];
  const target = data[task.packageId];
  const action = target && target.actions && target.actions[task.actionId];
  const actionName = (action && action.name) || task.actionId;
  const tone = SEVERITY_TONES[task.severity] || "neutral";
  return html`<li class="task" data-testid="task" data-replay-id=${replayId} data-severity=${task.severity}>
    <${ServiceIcon} pkg=${source} />
    <div class="task-main">
      <div class="task-head">
        <span class=${`status status-sm status-${tone}`} data-testid="task-severity">
          <span class="status-dot" aria-hidden="true"></span>${severityLabel(task.severity)}</span>
        <a class="task-service" href=${servicePath(requester)} data-testid="task-service">${titleOf(requester, source)}</a>
      </div>
      <p class="task-reason" data-testid="task-reason">${messageText(task.reason) || t("tasks.noReason", { action: actionName })}</p>
      <p class="muted small">${task.packageId === requester
        ? t("tasks.runHere", { action: actionName })
        : t("tasks.runOn", { action: actionName, service: titleOf(task.packageId, target) })}</p>
    </div>
    <div class="task-actions">
      <${Button} size="sm" disabled=${!action || Boolean(busy)} onClick=${onRun} data-testid="task-run">${t("tasks.run")}</${Button}>
      <${Button} size="sm" variant="ghost" loading=${busy} onClick=${onDismiss} data-testid="task-dismiss">${t("tasks.dismiss")}</${Button}>
    </div>
  </li>`;
}

/** The active tasks (all, or those of one package) with Run action and Dismiss; nothing when none. */
export function TasksList({ state, packageId = null }) {
  const [request, setRequest] = useState(null);
  const [confirm, setConfirm] = useState(null); // the critical task to dismiss
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const tasks = activeTasks(state, packageId);
  const flow = request ? html`<${ActionFlow} state=${state} request=${request} onClose=${() => setRequest(null)} />` : null;
  if (!tasks.length && !flow) return null;

  const dismiss = async (item, force) => {
    setConfirm(null);
    setBusy(item.replayId);
    setError(null);
    try {
      const params = { packageId: item.requester, replayId: item.replayId };
      if (force) params.force = true;
      await call("package.action.clear-task", params);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };
  const run = ({ entry }) => {
    const input = entry.task.input;
    setRequest({
      packageId: entry.task.packageId,
      actionId: entry.task.actionId,
      prefill: input && input.kind === "partial" ? input.value : undefined,
    });
  };

  // The flow sits beside the card, not in it: the run that clears the last task keeps its result open.
  const card = tasks.length ? html`<${Card} title=${t("tasks.title")} description=${t("tasks.text")} icon="checkAll" testid="tasks" class="tasks-card">
    ${error ? html`<${Alert} kind="error" testid="tasks-error">${error}</${Alert}>` : null}
    <ul class="tasks">
      ${tasks.map((item) => html`<${TaskRow} key=${`${item.requester}/${item.replayId}`} state=${state} ...${item}
        busy=${busy === item.replayId} onRun=${() => run(item)}
        onDismiss=${() => (item.entry.task.severity === "critical" ? setConfirm(item) : dismiss(item, false))} />`)}
    </ul>
    ${confirm ? html`<${ConfirmDialog} title=${t("tasks.dismissTitle")} confirmLabel=${t("tasks.dismiss")} danger
        onConfirm=${() => dismiss(confirm, true)} onCancel=${() => setConfirm(null)} testid="dismiss-dialog">
      <p>${t("tasks.dismissText", { service: titleOf(confirm.requester, state.packageData[confirm.requester]) })}</p>
    </${ConfirmDialog}>` : null}
  </${Card}>` : null;
  return html`${card}${flow}`;
}
