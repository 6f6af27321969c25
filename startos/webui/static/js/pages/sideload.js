// Sideload: pick or drop an .s9pk, upload it (package.sideload, then PUT /rest/upload/<guid> with
// real progress), then follow the install phases live until the service is installed.
// #/sideload/<id> is the same page opened from a service's Update button.
import { html, useEffect, useRef, useState } from "../html.js";
import { t } from "../i18n.js";
import { Code, RpcError, call } from "../rpc.js";
import { useRoute } from "../router.js";
import { Alert, Icon, errorText } from "../ui.js";
import {
  ActionButton, Glyph, ServiceIcon, Steps, formatBytes, formatPercent, installSteps, manifestOf, servicePath,
  titleOf,
} from "./service-common.js";

const PHASES = ["verify", "unpack", "init"];

/** PUT the file with upload progress; resolves with the install's start, rejects with an RpcError. */
function putFile(guid, file, onProgress, onAnswered) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("PUT", `/rest/upload/${encodeURIComponent(guid)}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      onAnswered();
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        reject(new RpcError(Code.BAD_RESPONSE, `HTTP ${xhr.status}`));
        return;
      }
      if (body && body.error && typeof body.error === "object") {
        const { code, message, data } = body.error;
        reject(new RpcError(code, message, data && data.details));
      } else if (body && body.result) {
        resolve(body.result);
      } else {
        reject(new RpcError(Code.BAD_RESPONSE, (body && body.error) || `HTTP ${xhr.status}`));
      }
    };
    xhr.onerror = () => reject(new RpcError(Code.NETWORK, "upload failed"));
    xhr.onabort = () => reject(new RpcError(Code.NETWORK, "aborted"));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

const BAD_FILE_CODES = [18, 23, 24]; // ParseS9pk, Pack, ValidateS9pk
const INVALID_SIGNATURE = 31;

/**
 * What went wrong, in words: {kind, text, step}. kind: newKey | signature | badFile | upload | server;
 * step: the one that failed (the server checks the file once it has it all: "verify").
 */
function describeFailure(err, uploaded) {
  const step = uploaded ? "verify" : "upload";
  // The server says "signed by a different key" for a valid package whose signer is not the one
  // of the installed version; other signature errors mean a broken or forged file.
  if (err.code === INVALID_SIGNATURE && /different key/i.test(err.details || "")) return { kind: "newKey", text: errorText(err), step };
  if (err.code === INVALID_SIGNATURE) return { kind: "signature", text: errorText(err), step };
  if (BAD_FILE_CODES.includes(err.code)) return { kind: "badFile", text: errorText(err), step };
  if (err.code === Code.NETWORK) return { kind: "upload", text: t("sideload.uploadFailed"), step };
  return { kind: "server", text: errorText(err), step: uploaded ? step : null };
}

function failureTitle(kind) {
  switch (kind) {
    case "badFile": return t("sideload.badFile");
    case "newKey": return t("sideload.newKeyTitle");
    case "signature": return t("sideload.badSignature");
    case "upload": return t("sideload.uploadInterrupted");
    case "install": return t("sideload.installFailed");
    default: return t("sideload.serverError");
  }
}

function Dropzone({ onFile, disabled }) {
  const [over, setOver] = useState(false);
  const input = useRef(null);
  const pick = (files) => {
    if (files && files.length) onFile(files[0]);
  };
  return html`<label class=${`dropzone dropzone-live${over ? " dropzone-over" : ""}`} data-testid="dropzone"
      onDragOver=${(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; setOver(true); }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(e) => { e.preventDefault(); setOver(false); if (!disabled) pick(e.dataTransfer.files); }}>
    <input ref=${input} type="file" accept=".s9pk" class="visually-hidden" data-testid="sideload-input" disabled=${disabled}
      onChange=${(e) => { pick(e.currentTarget.files); e.currentTarget.value = ""; }} />
    <span class="dropzone-icon"><${Icon} name="sideload" size=${28} /></span>
    <strong>${t("sideload.drop")}</strong>
    <span>${t("sideload.or")} <span class="link">${t("sideload.browse")}</span></span>
    <span class="muted small">${t("sideload.text")}</span>
  </label>`;
}

function FileCard({ file, children }) {
  return html`<div class="file-card" data-testid="sideload-file">
    <span class="file-icon"><${Glyph} name="file" size=${22} /></span>
    <div class="file-main">
      <strong class="file-name" data-testid="file-name">${file.name}</strong>
      <span class="muted small" data-testid="file-size">${formatBytes(file.size)}</span>
    </div>
    <div class="file-actions">${children}</div>
  </div>`;
}

export function SideloadPage({ state }) {
  const [updateId] = useRoute().rest;
  const packages = (state && state.packageData) || {};
  const updating = updateId && packages[updateId] ? updateId : null;

  const [file, setFile] = useState(null);
  const [phase, setPhase] = useState("pick"); // pick | ready | uploading | installing | done | failed
  const [sent, setSent] = useState({ loaded: 0, total: 0 });
  const [uploaded, setUploaded] = useState(false); // the server has the whole file (whatever it made of it)
  const [started, setStarted] = useState(null); // the upload's answer: {id, version, title, update, alert, ...}
  const [failure, setFailure] = useState(null); // {kind, text}
  const [notice, setNotice] = useState(null);
  const upload = useRef(null);
  const watch = useRef({ sawProgress: false, previousVersion: null, baseline: 0, lastPhases: null });

  // Leaving the page cancels an upload still running; an install already started goes on.
  useEffect(() => () => upload.current && upload.current.abort(), []);

  // Keep dropped files from replacing the dashboard when they miss the drop zone.
  useEffect(() => {
    const stop = (e) => e.preventDefault();
    addEventListener("dragover", stop);
    addEventListener("drop", stop);
    return () => {
      removeEventListener("dragover", stop);
      removeEventListener("drop", stop);
    };
  }, []);

  const choose = (picked) => {
    setFailure(null);
    setStarted(null);
    setNotice(null);
    if (!/\.s9pk$/i.test(picked.name)) {
      setFile(picked);
      setPhase("failed");
      setFailure({ kind: "badFile", text: t("sideload.notS9pk") });
      return;
    }
    setFile(picked);
    setPhase("ready");
  };

  const start = async (acceptNewKey = false) => {
    setFailure(null);
    setNotice(null);
    setSent({ loaded: 0, total: file.size });
    setUploaded(false);
    setPhase("uploading");
    let baseline = 0;
    try {
      const newest = await call("notification.list", { limit: 1 });
      baseline = newest.length ? newest[0].id : 0;
    } catch {
      // without a baseline an install failure is still seen in the state tree
    }
    let answered = false;
    try {
      const { upload: guid } = await call("package.sideload", { acceptNewKey });
      upload.current = putFile(guid, file, (loaded, total) => setSent({ loaded, total }), () => {
        answered = true;
        setUploaded(true);
      });
      const result = await upload.current.promise;
      upload.current = null;
      const before = packages[result.id];
      watch.current = {
        sawProgress: false,
        lastPhases: null,
        baseline,
        previousVersion: before && before.stateInfo.state === "installed" ? manifestOf(before).version : null,
      };
      setStarted(result);
      setPhase("installing");
    } catch (err) {
      upload.current = null;
      if (err.code === Code.NETWORK && err.details === "aborted") {
        setPhase("ready");
        return;
      }
      setFailure(describeFailure(err, answered));
      setPhase("failed");
    }
  };

  const cancelUpload = () => upload.current && upload.current.abort();

  // -- following the install in the live state ---------------------------------------------------

  const entry = started ? packages[started.id] : null;
  const entryState = entry && entry.stateInfo && entry.stateInfo.state;
  const entryVersion = entry && manifestOf(entry).version;
  if (phase === "installing" && (entryState === "installing" || entryState === "updating")) watch.current.sawProgress = true;

  useEffect(() => {
    if (phase !== "installing" || !started) return;
    const { sawProgress, previousVersion } = watch.current;
    // A new version is unambiguous in the tree; a reinstall of the same version waits for the
    // server's notification below.
    if (entryState === "installed" && entryVersion === started.version && previousVersion !== started.version) {
      setPhase("done");
    } else if (sawProgress && (!entry || (entryState === "installed" && entryVersion !== started.version))) {
      setFailure({ kind: "install", text: t("sideload.installFailedText"), step: "install" });
      setPhase("failed");
    }
  }, [phase, started, entry, entryState, entryVersion]);

  // The server notifies the end of every install, with the reason when it failed.
  const unread = state && state.serverInfo && state.serverInfo.unreadNotificationCount;
  useEffect(() => {
    if (!started || (phase !== "installing" && !(phase === "failed" && failure && failure.kind === "install"))) return;
    let stale = false;
    call("notification.list", { limit: 20 }).then((list) => {
      if (stale) return;
      const note = list.find((n) => n.id > watch.current.baseline && n.packageId === started.id && (n.level === "error" || n.level === "success"));
      if (!note) return;
      if (note.level === "error") {
        setFailure({ kind: "install", text: note.message || note.title, step: "install" });
        setPhase("failed");
      } else if (phase === "installing") {
        setPhase("done");
      }
    }, () => {});
    return () => {
      stale = true;
    };
  }, [unread, phase, started]);

  const cancelInstall = async () => {
    try {
      await call("package.cancel-install", { id: started.id });
    } catch (err) {
      setNotice(errorText(err));
    }
  };

  const reset = () => {
    setFile(null);
    setUploaded(false);
    setSent({ loaded: 0, total: 0 });
    setStarted(null);
    setFailure(null);
    setNotice(null);
    setPhase("pick");
  };

  // -- what to show ------------------------------------------------------------------------------

  const uploadFraction = sent.total ? sent.loaded / sent.total : 0;
  const live = entry && entry.stateInfo.installingInfo ? installSteps(entry.stateInfo.installingInfo) : null;
  if (live && live.length) watch.current.lastPhases = live;
  const known = live || watch.current.lastPhases || [];
  const failedAt = phase === "failed" && failure ? failure.step : null;
  const steps = [
    {
      name: "upload",
      state: uploaded ? "done" : phase === "uploading" ? "active" : failedAt === "upload" ? "failed" : "pending",
      fraction: uploadFraction,
      detail: phase === "uploading" ? `${formatBytes(sent.loaded)} / ${formatBytes(sent.total)} · ${formatPercent(uploadFraction)}`
        : uploaded ? formatBytes(file ? file.size : 0) : null,
    },
    ...PHASES.map((name) => {
      const seen = known.find((p) => p.name === name);
      return { name, state: phase === "done" ? "done" : seen ? seen.state : "pending", fraction: seen && seen.fraction };
    }),
  ];
  if (failedAt === "install") {
    const at = steps.findIndex((step) => step.state !== "done");
    if (at >= 0) steps[at] = { ...steps[at], state: "failed" };
  } else if (failedAt) {
    const at = steps.findIndex((step) => step.name === failedAt);
    steps[at] = { ...steps[at], state: "failed" };
  }

  const target = updating ? packages[updating] : null;
  const working = phase === "uploading" || phase === "installing";

  return html`<div class="stack sideload">
    ${target ? html`<div class="update-banner" data-testid="update-banner">
      <${ServiceIcon} pkg=${target} />
      <div>
        <strong>${t("sideload.updateTitle", { title: titleOf(updating, target) })}</strong>
        <p class="muted small">${t("sideload.updateText", { version: manifestOf(target).version || "" })}</p>
      </div>
      <a class="btn btn-ghost btn-sm" href=${servicePath(updating)}>${t("common.cancel")}</a>
    </div>` : null}

    ${phase === "pick" ? html`<${Dropzone} onFile=${choose} />` : null}

    ${file && phase !== "pick" ? html`<section class="card sideload-card">
      <div class="card-body">
        <${FileCard} file=${file}>
          ${phase === "ready" ? html`
            <${ActionButton} variant="ghost" onClick=${reset}>${t("sideload.another")}</${ActionButton}>
            <${ActionButton} glyph="sideload" onClick=${() => start(false)} data-testid="sideload-install">
              ${target ? t("sideload.update") : t("sideload.install")}</${ActionButton}>` : null}
          ${phase === "uploading" ? html`<${ActionButton} variant="ghost" glyph="close" onClick=${cancelUpload}
            data-testid="sideload-cancel-upload">${t("sideload.cancelUpload")}</${ActionButton}>` : null}
          ${phase === "installing" ? html`<${ActionButton} variant="ghost" glyph="close" onClick=${cancelInstall}
            data-testid="sideload-cancel-install">${t("sideload.cancelInstall")}</${ActionButton}>` : null}
        </${FileCard}>

        ${started && target && started.id !== updating ? html`<${Alert} kind="warning">
          ${t("sideload.otherPackage", { title: started.title, expected: titleOf(updating, target) })}</${Alert}>` : null}
        ${started && started.alert ? html`<${Alert} kind="info" title=${t("sideload.packageAlert")}>${started.alert}</${Alert}>` : null}
        ${notice ? html`<${Alert} kind="error">${notice}</${Alert}>` : null}

        ${phase === "uploading" || phase === "installing" || phase === "done" || failedAt
          ? html`<div class="sideload-progress" data-testid="sideload-progress">
            ${started ? html`<p class="sideload-what"><strong>${started.title}</strong> <span class="version">${started.version}</span>
              ${started.update ? html`<span class="pill pill-accent">${t("sideload.isUpdate")}</span>` : null}</p>` : null}
            <${Steps} steps=${steps} />
          </div>` : null}

        ${phase === "failed" && failure ? html`<div class="sideload-failure">
          <${Alert} kind=${failure.kind === "newKey" ? "warning" : "error"} title=${failureTitle(failure.kind)} testid="sideload-error">
            ${failure.text}
            ${failure.kind === "newKey" ? html`<p class="alert-more">${t("sideload.newKeyText")}</p>` : null}
          </${Alert}>
          <div class="form-actions">
            <${ActionButton} variant="ghost" onClick=${reset} data-testid="sideload-another">${t("sideload.another")}</${ActionButton}>
            ${failure.kind === "newKey"
              ? html`<${ActionButton} variant="danger" glyph="key" onClick=${() => start(true)} data-testid="sideload-accept-key">
                  ${t("sideload.acceptKey")}</${ActionButton}>`
              : failure.kind !== "badFile" ? html`<${ActionButton} variant="secondary" glyph="restart" onClick=${() => start(false)}
                  data-testid="sideload-retry">${t("common.retry")}</${ActionButton}>` : null}
          </div>
        </div>` : null}

        ${phase === "done" && started ? html`<div class="sideload-done" data-testid="sideload-done">
          <${ServiceIcon} pkg=${entry} />
          <div>
            <strong>${started.update ? t("sideload.updated", { title: started.title, version: started.version })
              : t("sideload.installed", { title: started.title, version: started.version })}</strong>
            <p class="muted small">${t("sideload.doneText")}</p>
          </div>
          <div class="sideload-done-actions">
            <${ActionButton} variant="ghost" onClick=${reset}>${t("sideload.another")}</${ActionButton}>
            <a class="btn btn-primary" href=${servicePath(started.id)} data-testid="open-service">
              <span>${t("sideload.open", { title: started.title })}</span><${Icon} name="arrowRight" size=${18} /></a>
          </div>
        </div>` : null}
        ${working ? html`<p class="muted small sideload-hint">${phase === "uploading" ? t("sideload.stayHint") : t("sideload.installHint")}</p>` : null}
      </div>
    </section>` : null}
  </div>`;
}
