// One service (#/services/<id>): live status with the actions that fit it, its daemons, long-running
// progress, health checks and dependencies, actions, tasks, interfaces, resource use (package.stats, polled),
// live logs, update and uninstall.
import { html, useEffect, useState } from "../html.js";
import { messageText, t } from "../i18n.js";
import { Code, call } from "../rpc.js";
import { Alert, Button, Card, CopyButton, EmptyState, Icon, errorText } from "../ui.js";
import { hrefTo, navigate } from "../router.js";
import {
  ActionButton, ConfirmDialog, Meter, ServiceIcon, StatusPill, Steps, formatBytes, formatNumber, formatPercent, installSteps,
  localized, manifestOf, statusOf, titleOf, useNow, wantsToRun,
} from "./service-common.js";
import { LogViewer } from "./service-logs.js";
import { ActionsCard } from "./service-actions.js";
import { BlockedAlert, Dependencies, HealthList } from "./service-health.js";
import { Interfaces } from "./service-interfaces.js";
import { TasksList } from "./tasks.js";

const STATS_EVERY_MS = 3000;

// -- actions -------------------------------------------------------------------------------------

// Which buttons fit: the server's summary says where the service is, statusInfo.desired where it
// is meant to be. "unknown" (a server that writes no summary) offers what desired allows.
function actionsFor(status, pkg) {
  const wants = wantsToRun(pkg);
  const kind = status.kind;
  return {
    start: kind === "stopped" || (!wants && ["error", "task-required", "unknown"].includes(kind)),
    stop: wants && ["running", "degraded", "starting", "waiting", "task-required", "crash-looping", "error", "unknown"].includes(kind),
    restart: wants && ["running", "degraded", "crash-looping", "error"].includes(kind),
    cancel: kind === "installing" || kind === "updating",
    manage: !status.transitional,
  };
}

function Header({ id, pkg, status, busy, onAction, onUninstall }) {
  const manifest = manifestOf(pkg);
  const can = actionsFor(status, pkg);
  const newVersion = pkg.stateInfo && pkg.stateInfo.installingInfo && pkg.stateInfo.installingInfo.newVersion;
  return html`<section class="card service-head" data-testid="service-head">
    <${ServiceIcon} pkg=${pkg} size="lg" />
    <div class="service-head-main">
      <div class="service-head-title">
        <h2 data-testid="service-title">${titleOf(id, pkg)}</h2>
        <span class="version" data-testid="service-version">${manifest.version || ""}${status.kind === "updating" && newVersion ? ` → ${newVersion}` : ""}</span>
        <${StatusPill} status=${status} size="lg" />
      </div>
      ${localized(manifest.description && manifest.description.short)
        ? html`<p class="muted service-head-text">${localized(manifest.description.short)}</p>` : null}
    </div>
    <div class="service-head-actions">
      ${can.start ? html`<${ActionButton} glyph="play" loading=${busy === "start"} disabled=${Boolean(busy)} onClick=${() => onAction("start")}
        data-testid="action-start">${t("service.start")}</${ActionButton}>` : null}
      ${can.restart ? html`<${ActionButton} variant="secondary" glyph="restart" loading=${busy === "restart"} disabled=${Boolean(busy)}
        onClick=${() => onAction("restart")} data-testid="action-restart">${t("service.restart")}</${ActionButton}>` : null}
      ${can.stop ? html`<${ActionButton} variant="secondary" glyph="stop" loading=${busy === "stop"} disabled=${Boolean(busy)}
        onClick=${() => onAction("stop")} data-testid="action-stop">${t("service.stop")}</${ActionButton}>` : null}
      ${can.cancel ? html`<${Button} variant="secondary" icon="close" loading=${busy === "cancel-install"} disabled=${Boolean(busy)}
        onClick=${() => onAction("cancel-install")} data-testid="action-cancel">${t("service.cancelInstall")}</${Button}>` : null}
      ${can.manage ? html`<a class="btn btn-ghost" href=${hrefTo("sideload", id)} data-testid="action-update">
        <${Icon} name="sideload" size=${18} /><span>${t("service.update")}</span></a>
        <${Button} variant="ghost" icon="trash" class="btn-danger-ghost" disabled=${Boolean(busy)} onClick=${onUninstall}
          data-testid="action-uninstall">${t("service.uninstall")}</${Button}>` : null}
    </div>
  </section>`;
}

// -- daemons, progress, health -------------------------------------------------------------------

function daemonStateLabel(state) {
  switch (state) {
    case "starting": return t("daemon.starting");
    case "running": return t("daemon.running");
    case "backing-off": return t("daemon.backingOff");
    case "crash-looping": return t("daemon.crashLooping");
    case "stopping": return t("daemon.stopping");
    case "stopped": return t("daemon.stopped");
    default: return state;
  }
}

const DAEMON_TONES = { running: "success", starting: "warning", stopping: "warning", "backing-off": "warning", "crash-looping": "danger" };

// When each retry is due: retryIn is relative to the moment the state was published, so the
// countdown starts when this browser first saw that state.
const retryDue = new Map();

function dueAt(key, seconds) {
  if (!retryDue.has(key)) retryDue.set(key, Date.now() + seconds * 1000);
  return retryDue.get(key);
}

function Daemons({ id, daemons }) {
  const entries = Object.entries(daemons || {});
  const waiting = entries.some(([, d]) => d.retryIn != null && (d.state === "backing-off" || d.state === "crash-looping"));
  const now = useNow(waiting);
  return html`<${Card} title=${t("daemons.title")} icon="server" testid="daemons">
    ${entries.length ? html`<div class="table-wrap"><table class="table daemons-table">
      <thead><tr>
        <th scope="col">${t("daemons.daemon")}</th><th scope="col">${t("daemons.state")}</th>
        <th scope="col" class="num">${t("daemons.failures")}</th><th scope="col">${t("daemons.retry")}</th>
      </tr></thead>
      ${entries.map(([daemonId, d]) => {
        const counting = d.retryIn != null && (d.state === "backing-off" || d.state === "crash-looping");
        const left = counting ? Math.max(0, Math.ceil((dueAt(`${id}/${daemonId}/${d.state}/${d.failures}/${d.retryIn}`, d.retryIn) - now) / 1000)) : null;
        const reason = d.reason === "shutdown" ? t("daemons.stoppedByRequest") : messageText(d.reason);
        // One tbody per daemon: its row, and under it why it last exited.
        return html`<tbody key=${daemonId} data-testid="daemon" data-id=${daemonId}>
          <tr class=${reason ? "has-reason" : ""}>
            <th scope="row"><code>${daemonId}</code></th>
            <td><span class=${`status status-sm status-${DAEMON_TONES[d.state] || "neutral"}`} data-testid="daemon-state" data-state=${d.state}>
              <span class="status-dot" aria-hidden="true"></span>${daemonStateLabel(d.state)}</span></td>
            <td class="num" data-testid="daemon-failures">${d.failures || 0}</td>
            <td class="num-text" data-testid="daemon-retry">${counting ? (left > 0 ? t("daemons.retryIn", { seconds: left }) : t("daemons.retryingNow")) : "—"}</td>
          </tr>
          ${reason ? html`<tr class="reason-row"><td colspan="4" data-testid="daemon-reason">
            <span class="reason-label">${t("daemons.lastExit")}</span> ${reason}</td></tr>` : null}
        </tbody>`;
      })}
    </table></div>` : html`<p class="muted">${t("daemons.none")}</p>`}
  </${Card}>`;
}

function LongProgress({ progress }) {
  const entries = Object.entries(progress || {});
  if (!entries.length) return null;
  return html`<${Card} title=${t("progress.title")} icon="restore" testid="progress">
    <div class="progress-list">
      ${entries.map(([daemon, p]) => {
        const fraction = p.total ? Math.min(1, p.done / p.total) : null;
        return html`<div class="progress-item" key=${daemon} data-testid="long-progress" data-id=${daemon}>
          <div class="row-between">
            <span><code>${daemon}</code>${p.message ? html` <span class="muted">${p.message}</span>` : null}</span>
            <span class="muted small num">${p.total ? `${formatNumber(p.done)} / ${formatNumber(p.total)}` : formatNumber(p.done || 0)}</span>
          </div>
          <${Meter} fraction=${fraction} label=${p.message || daemon} />
        </div>`;
      })}
    </div>
  </${Card}>`;
}

// -- resource use --------------------------------------------------------------------------------

function Stats({ id }) {
  const [stats, setStats] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let stopped = false;
    let timer = null;
    const poll = async () => {
      if (document.hidden) { // nobody is looking: ask again later
        timer = setTimeout(poll, STATS_EVERY_MS);
        return;
      }
      try {
        const result = await call("package.stats", { id });
        if (stopped) return;
        setStats(result);
        setError(null);
      } catch (err) {
        if (stopped || err.code === Code.AUTHORIZATION) return;
        setError(errorText(err));
      }
      if (!stopped) timer = setTimeout(poll, STATS_EVERY_MS);
    };
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [id]);

  const limit = stats && stats.memoryLimitBytes;
  return html`<${Card} title=${t("stats.title")} icon="monitor" testid="stats">
    ${error && !stats ? html`<p class="muted small">${t("stats.unavailable")}</p>` : null}
    <dl class="stats">
      <div><dt>${t("stats.cpu")}</dt><dd data-testid="stat-cpu">${stats ? formatPercent(stats.cpuPercent / 100, 1) : "—"}</dd></div>
      <div><dt>${t("stats.memory")}</dt><dd data-testid="stat-memory">${stats ? formatBytes(stats.memoryBytes) : "—"}
        ${limit ? html`<span class="muted small"> ${t("stats.ofLimit", { limit: formatBytes(limit) })}</span>` : null}</dd></div>
      <div><dt>${t("stats.processes")}</dt><dd data-testid="stat-processes">${stats ? formatNumber(stats.processes) : "—"}</dd></div>
    </dl>
    ${limit ? html`<${Meter} fraction=${stats.memoryBytes / limit} label=${t("stats.memory")} tone=${stats.memoryBytes / limit > 0.9 ? "danger" : null} />` : null}
    <p class="muted small stats-note">${t("stats.note")}</p>
  </${Card}>`;
}

function About({ pkg }) {
  const manifest = manifestOf(pkg);
  const links = [
    [t("about.packageRepo"), manifest.packageRepo],
    [t("about.upstreamRepo"), manifest.upstreamRepo],
    [t("about.website"), manifest.marketingUrl],
  ].filter(([, url]) => typeof url === "string" && /^https?:\/\//.test(url));
  return html`<${Card} title=${t("about.title")} icon="info" testid="about-service">
    ${localized(manifest.description && manifest.description.long) ? html`<p class="about-text">${localized(manifest.description.long)}</p>` : null}
    <dl class="details">
      <div><dt>${t("about.id")}</dt><dd><code>${manifest.id}</code></dd></div>
      ${manifest.license ? html`<div><dt>${t("about.license")}</dt><dd>${manifest.license}</dd></div>` : null}
      ${pkg.signer ? html`<div><dt>${t("about.signer")}</dt><dd class="mono-wrap"><code title=${pkg.signer}>${pkg.signer}</code><${CopyButton} text=${pkg.signer} /></dd></div>` : null}
      ${links.length ? html`<div><dt>${t("about.links")}</dt><dd class="links">
        ${links.map(([label, url]) => html`<a href=${url} target="_blank" rel="noopener noreferrer">${label}</a>`)}</dd></div>` : null}
    </dl>
  </${Card}>`;
}

// -- the page ------------------------------------------------------------------------------------

export function ServicePage({ id, state }) {
  const pkg = state && state.packageData && state.packageData[id];
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [confirm, setConfirm] = useState(null); // "uninstall" | "start" | "stop"
  const [removing, setRemoving] = useState(false);

  useEffect(() => {
    if (removing && !pkg) navigate("services");
  }, [removing, pkg]);

  if (!pkg) {
    return html`<div class="stack">
      <a class="back" href="#/services"><${Icon} name="arrowLeft" size=${16} />${t("nav.services")}</a>
      <${EmptyState} icon="package" title=${t("service.notInstalled")}
        action=${html`<a class="btn btn-primary" href="#/services">${t("service.backToList")}</a>`}>
        ${t("service.notInstalledText", { id })}
      </${EmptyState}>
    </div>`;
  }

  const manifest = manifestOf(pkg);
  const alerts = manifest.alerts || {};
  const status = statusOf(pkg);
  const statusInfo = pkg.statusInfo || {};
  const stateName = (pkg.stateInfo && pkg.stateInfo.state) || "installed";

  const run = async (action) => {
    setBusy(action);
    setError(null);
    try {
      await call(`package.${action}`, { id });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };
  const onAction = (action) => {
    if ((action === "start" && alerts.start) || (action === "stop" && alerts.stop)) setConfirm(action);
    else run(action);
  };
  // Installed services that require this one: the dialog names them, and confirming forces it.
  const dependents = Object.entries((state && state.packageData) || {})
    .filter(([other, entry]) => other !== id && entry && entry.currentDependencies
      && entry.currentDependencies[id] && !entry.currentDependencies[id].optional)
    .map(([other, entry]) => titleOf(other, entry));
  const uninstall = async () => {
    setConfirm(null);
    setRemoving(true);
    setError(null);
    try {
      await call("package.uninstall", { id, force: dependents.length > 0 });
      navigate("services");
    } catch (err) {
      setRemoving(false);
      setError(errorText(err));
    }
  };

  return html`<div class="stack service-page">
    <a class="back" href="#/services"><${Icon} name="arrowLeft" size=${16} />${t("nav.services")}</a>
    <${Header} id=${id} pkg=${pkg} status=${status} busy=${removing ? "uninstall" : busy} onAction=${onAction}
      onUninstall=${() => setConfirm("uninstall")} />
    ${error ? html`<${Alert} kind="error" testid="service-error">${error}</${Alert}>` : null}
    <${BlockedAlert} pkg=${pkg} state=${state} />
    <${TasksList} state=${state} packageId=${id} />
    ${statusInfo.error && !status.transitional ? html`<${Alert} kind="error" title=${status.kind === "crash-looping" ? t("status.crashLooping") : t("status.error")}
      testid="status-error">${messageText(statusInfo.error.message)}</${Alert}>` : null}
    ${stateName === "installing" || stateName === "updating" ? html`<${Card} title=${stateName === "updating" ? t("service.updatingTitle") : t("service.installingTitle")} icon="package" testid="install-progress">
      <${Steps} steps=${installSteps(pkg.stateInfo.installingInfo)} />
    </${Card}>` : null}
    ${stateName === "removing" ? html`<${Alert} kind="info">${t("service.removingText")}</${Alert}>` : null}
    <div class=${stateName === "installed" ? "service-grid" : "stack"}>
      <div class="stack">
        <${Daemons} id=${id} daemons=${statusInfo.daemons} />
        ${status.kind !== "stopped" ? html`<${LongProgress} progress=${statusInfo.progress} />` : null}
        <${HealthList} health=${statusInfo.health} />
        <${Dependencies} pkg=${pkg} state=${state} />
      </div>
      ${stateName === "installed" ? html`<div class="stack"><${ActionsCard} id=${id} pkg=${pkg} state=${state} /><${Stats} id=${id} /></div>` : null}
    </div>
    <${Interfaces} id=${id} pkg=${pkg} />
    ${stateName === "installed" || stateName === "updating" ? html`<${LogViewer} id=${id} />` : null}
    <${About} pkg=${pkg} />
    ${confirm === "uninstall" ? html`<${ConfirmDialog} title=${t("uninstall.title", { title: titleOf(id, pkg) })} danger
        confirmLabel=${t("service.uninstall")} onConfirm=${uninstall} onCancel=${() => setConfirm(null)} testid="uninstall-dialog">
      ${alerts.uninstall ? html`<${Alert} kind="warning" title=${t("uninstall.alertTitle")} testid="uninstall-alert">${alerts.uninstall}</${Alert}>` : null}
      ${dependents.length ? html`<${Alert} kind="warning" title=${t("uninstall.dependentsTitle")} testid="uninstall-dependents">${t("uninstall.dependentsText", { names: dependents.join(", ") })}</${Alert}>` : null}
      <p>${t("uninstall.text", { title: titleOf(id, pkg) })}</p>
    </${ConfirmDialog}>` : null}
    ${confirm === "start" || confirm === "stop" ? html`<${ConfirmDialog}
        title=${confirm === "start" ? t("service.startTitle", { title: titleOf(id, pkg) }) : t("service.stopTitle", { title: titleOf(id, pkg) })}
        confirmLabel=${confirm === "start" ? t("service.start") : t("service.stop")}
        onConfirm=${() => { const action = confirm; setConfirm(null); run(action); }} onCancel=${() => setConfirm(null)}>
      <${Alert} kind="warning">${confirm === "start" ? alerts.start : alerts.stop}</${Alert}>
    </${ConfirmDialog}>` : null}
  </div>`;
}
