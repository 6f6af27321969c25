// The setup wizard: choose "Start fresh", name the server, set the master password, then offer
// StartOS-info.html and the Root CA before going on to log in (docs: "Initial Setup").
import { html, useEffect, useRef, useState } from "../html.js";
import { currentLanguage, t } from "../i18n.js";
import { call } from "../rpc.js";
import { Alert, Button, CopyButton, Field, Icon, PasswordInput, Spinner, UsernameHint, downloadText, errorText, hostnameLabel } from "../ui.js";
import { AuthLayout } from "./auth-layout.js";

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 64;
const NAME_MAX = 64;
export const SETUP_LANGUAGE_KEY = "startos.setupLanguage";

const STEPS = ["choose", "name", "password"];

function Steps({ step }) {
  const index = STEPS.indexOf(step);
  const labels = [t("setup.step.option"), t("setup.step.name"), t("setup.step.password")];
  return html`<ol class="steps" aria-label=${t("setup.progressLabel")}>
    ${labels.map((label, i) => html`<li class=${i < index ? "done" : i === index ? "current" : ""}
      aria-current=${i === index ? "step" : null}>
      <span class="step-dot">${i < index ? html`<${Icon} name="check" size=${14} />` : i + 1}</span>
      <span class="step-label">${label}</span>
    </li>`)}
  </ol>`;
}

function ChooseStep({ onFresh }) {
  const option = (icon, title, text, enabled, onClick, testid) => html`<button type="button"
      class=${`option${enabled ? "" : " option-disabled"}`} disabled=${!enabled} onClick=${onClick} data-testid=${testid}>
    <span class="option-icon"><${Icon} name=${icon} size=${24} /></span>
    <span class="option-text">
      <strong>${title}</strong>
      <span>${text}</span>
      ${enabled ? null : html`<span class="pill pill-muted">${t("setup.laterRelease")}</span>`}
    </span>
    ${enabled ? html`<${Icon} name="arrowRight" class="option-arrow" />` : null}
  </button>`;
  return html`<div>
    <h1>${t("setup.welcome")}</h1>
    <p class="lead">${t("setup.chooseIntro")}</p>
    <div class="options">
      ${option("sparkle", t("setup.fresh"), t("setup.freshText"), true, onFresh, "setup-fresh")}
      ${option("restore", t("setup.restore"), t("setup.restoreText"), false, null, "setup-restore")}
      ${option("transfer", t("setup.transfer"), t("setup.transferText"), false, null, "setup-transfer")}
    </div>
  </div>`;
}

/** Characters as the server counts them (code points, not UTF-16 units). */
export function passwordLength(password) {
  return [...password].length;
}

export function nameProblem(name) {
  const trimmed = name.trim();
  if (!trimmed) return t("setup.name.empty");
  if ([...trimmed].length > NAME_MAX) return t("setup.name.tooLong", { max: NAME_MAX });
  if (!hostnameLabel(trimmed)) return t("setup.name.needsLetter");
  return null;
}

function NameStep({ name, setName, onBack, onNext }) {
  const [touched, setTouched] = useState(false);
  const input = useRef(null);
  useEffect(() => {
    if (input.current) input.current.focus();
  }, []);
  const problem = nameProblem(name);
  const label = hostnameLabel(name.trim());
  const submit = (e) => {
    e.preventDefault();
    setTouched(true);
    if (!problem) onNext();
  };
  return html`<form onSubmit=${submit} novalidate>
    <h1>${t("setup.name.title")}</h1>
    <p class="lead">${t("setup.name.intro")}</p>
    <${Field} id="server-name" label=${t("setup.name.label")} error=${name || touched ? problem : null}>
      <input id="server-name" class="input" ref=${input} value=${name} maxlength=${NAME_MAX + 16} autocomplete="off"
        placeholder=${t("setup.name.placeholder")} aria-invalid=${(name || touched) && problem ? "true" : null}
        onInput=${(e) => setName(e.currentTarget.value)} onBlur=${() => setTouched(true)} />
    </${Field}>
    <div class="address-preview" aria-live="polite">
      <span class="address-preview-label">${t("setup.name.addressLabel")}</span>
      <code data-testid="mdns-preview">${label ? `${label}.local` : "—"}</code>
      <span class="address-preview-note">${t("setup.name.addressNote")}</span>
    </div>
    <div class="form-actions">
      <${Button} variant="ghost" icon="arrowLeft" onClick=${onBack}>${t("common.back")}</${Button}>
      <${Button} type="submit" disabled=${Boolean(problem)}>${t("common.continue")}</${Button}>
    </div>
  </form>`;
}

function Rule({ ok, children }) {
  return html`<li class=${ok ? "rule rule-ok" : "rule"}><${Icon} name=${ok ? "check" : "info"} size=${16} />${children}</li>`;
}

function PasswordStep({ name, password, setPassword, confirm, setConfirm, error, onBack, onSubmit }) {
  useEffect(() => {
    const el = document.getElementById("setup-password");
    if (el) el.focus();
  }, []);
  const length = passwordLength(password);
  const longEnough = length >= PASSWORD_MIN;
  const shortEnough = length <= PASSWORD_MAX;
  const matches = password.length > 0 && password === confirm;
  const valid = longEnough && shortEnough && matches;
  const submit = (e) => {
    e.preventDefault();
    if (valid) onSubmit();
  };
  return html`<form onSubmit=${submit} novalidate>
    <h1>${t("setup.password.title")}</h1>
    <p class="lead">${t("setup.password.intro")}</p>
    <${Alert} kind="warning">${t("setup.password.warning")}</${Alert}>
    <${UsernameHint} value=${`${hostnameLabel(name)}.local`} />
    <${Field} id="setup-password" label=${t("setup.password.label")}>
      <${PasswordInput} id="setup-password" value=${password} onInput=${setPassword} autocomplete="new-password" />
    </${Field}>
    <${Field} id="setup-confirm" label=${t("setup.password.confirm")}
      error=${confirm && !matches && confirm.length >= password.length ? t("setup.password.mismatch") : null}>
      <${PasswordInput} id="setup-confirm" value=${confirm} onInput=${setConfirm} autocomplete="new-password" />
    </${Field}>
    <ul class="rules">
      <${Rule} ok=${longEnough}>${t("password.rule.min", { min: PASSWORD_MIN })}</${Rule}>
      <${Rule} ok=${password.length > 0 && shortEnough}>${t("password.rule.max", { max: PASSWORD_MAX })}</${Rule}>
      <${Rule} ok=${matches}>${t("password.rule.match")}</${Rule}>
    </ul>
    ${error ? html`<${Alert} kind="error" testid="setup-error">${error}</${Alert}>` : null}
    <div class="form-actions">
      <${Button} variant="ghost" icon="arrowLeft" onClick=${onBack}>${t("common.back")}</${Button}>
      <${Button} type="submit" disabled=${!valid}>${t("setup.submit")}</${Button}>
    </div>
  </form>`;
}

function Working({ name }) {
  return html`<div class="working" role="status" aria-live="polite">
    <${Spinner} size="lg" />
    <h1>${t("setup.working.title", { name })}</h1>
    <p class="lead">${t("setup.working.text")}</p>
    <div class="progress progress-indeterminate"><span></span></div>
  </div>`;
}

function Done({ result, onContinue }) {
  const [savedInfo, setSavedInfo] = useState(false);
  const saveInfo = () => {
    downloadText("StartOS-info.html", result.infoHtml, "text/html");
    setSavedInfo(true);
  };
  const saveCa = () => downloadText(`${result.hostname || "server"}-root-ca.crt`, result.rootCa, "application/x-x509-ca-cert");
  return html`<div class="done">
    <div class="done-badge"><${Icon} name="check" size=${28} /></div>
    <h1>${t("setup.done.title")}</h1>
    <p class="lead">${t("setup.done.text", { name: result.name })}</p>
    <div class="address-preview address-final">
      <span class="address-preview-label">${t("setup.done.address")}</span>
      <code data-testid="mdns-address">${result.mdnsAddress}</code>
    </div>
    <div class="download-panel">
      <div>
        <strong>${t("setup.done.infoTitle")}</strong>
        <p>${t("setup.done.infoText")}</p>
      </div>
      <div class="download-actions">
        <${Button} icon="download" onClick=${saveInfo} data-testid="download-info">${t("setup.done.downloadInfo")}</${Button}>
        ${result.rootCa ? html`<${Button} variant="secondary" icon="download" onClick=${saveCa} data-testid="download-ca">
          ${t("setup.done.downloadCa")}</${Button}>` : null}
      </div>
      ${result.caFingerprint ? html`<div class="fingerprint">
        <span>${t("system.caFingerprint")}</span>
        <code>${result.caFingerprint}</code><${CopyButton} text=${result.caFingerprint} />
      </div>` : null}
    </div>
    <${Alert} kind="info" title=${t("setup.done.trustTitle")}>${t("setup.done.trustText")}</${Alert}>
    <div class="form-actions form-actions-end">
      ${savedInfo ? null : html`<span class="muted small">${t("setup.done.downloadFirst")}</span>`}
      <${Button} icon="arrowRight" disabled=${!savedInfo} onClick=${onContinue} data-testid="continue-login">
        ${t("setup.done.continue")}</${Button}>
    </div>
  </div>`;
}

export function SetupWizard({ onDone }) {
  const [step, setStep] = useState("choose");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);

  const execute = async () => {
    setError(null);
    setStep("working");
    try {
      const answer = await call("setup.execute", { serverName: name.trim(), password });
      setPassword("");
      setConfirm("");
      setResult(answer);
      setStep("done");
      // The language picked during setup becomes the server's after the first login.
      try {
        sessionStorage.setItem(SETUP_LANGUAGE_KEY, currentLanguage());
      } catch {
        // storage disabled: the server keeps its default language
      }
    } catch (err) {
      setError(errorText(err));
      setStep("password");
    }
  };

  let body;
  if (step === "choose") body = html`<${ChooseStep} onFresh=${() => setStep("name")} />`;
  else if (step === "name") {
    body = html`<${NameStep} name=${name} setName=${setName} onBack=${() => setStep("choose")}
      onNext=${() => setStep("password")} />`;
  } else if (step === "password") {
    body = html`<${PasswordStep} name=${name} password=${password} setPassword=${setPassword} confirm=${confirm}
      setConfirm=${setConfirm} error=${error} onBack=${() => setStep("name")} onSubmit=${execute} />`;
  } else if (step === "working") body = html`<${Working} name=${name.trim()} />`;
  else body = html`<${Done} result=${result} onContinue=${onDone} />`;

  return html`<${AuthLayout} wide>
    ${STEPS.includes(step) ? html`<${Steps} step=${step} />` : null}
    <div class="wizard-body" data-step=${step}>${body}</div>
  </${AuthLayout}>`;
}
