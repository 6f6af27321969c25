// System: about this server, general settings (name, language), password and sessions.
import { html, useCallback, useEffect, useState } from "../html.js";
import { LANGUAGES, formatDate, formatRelative, setLanguage, t } from "../i18n.js";
import { call } from "../rpc.js";
import { Alert, Button, Card, CopyButton, Field, Icon, LanguageSelect, PasswordInput, Spinner, UsernameHint, errorText, localAddress } from "../ui.js";
import { PASSWORD_MAX, PASSWORD_MIN, nameProblem, passwordLength } from "./setup.js";

function About({ info }) {
  const rows = [
    [t("system.name"), info.name, "about-name"],
    [t("system.address"), localAddress(info.hostname), "about-address"],
    [t("system.version"), info.version, "about-version"],
    [t("system.serverId"), info.id, "about-id"],
  ];
  return html`<${Card} title=${t("system.about")} icon="server" testid="about">
    <dl class="details">
      ${rows.map(([label, value, testid]) => html`<div><dt>${label}</dt><dd data-testid=${testid}>${value || "—"}</dd></div>`)}
      <div>
        <dt>${t("system.caFingerprint")}</dt>
        <dd class="mono-wrap">
          ${info.caFingerprint ? html`<code data-testid="about-fingerprint">${info.caFingerprint}</code><${CopyButton} text=${info.caFingerprint} />` : "—"}
        </dd>
      </div>
    </dl>
    <div class="card-foot">
      <a class="btn btn-secondary" href="/static/local-root-ca.crt" download=${`${info.hostname || "server"}-root-ca.crt`}>
        <${Icon} name="download" size=${18} /><span>${t("system.downloadCa")}</span></a>
      <span class="muted small">${t("system.caHint")}</span>
    </div>
  </${Card}>`;
}

function General({ info }) {
  const [name, setName] = useState(info.name || "");
  const [saving, setSaving] = useState(false);
  const [message, setMessage] = useState(null);
  const [langError, setLangError] = useState(null);
  const [langBusy, setLangBusy] = useState(false);

  useEffect(() => setName(info.name || ""), [info.name]);

  const problem = nameProblem(name);
  const rename = async (e) => {
    e.preventDefault();
    if (problem || name.trim() === info.name) return;
    setSaving(true);
    setMessage(null);
    try {
      await call("server.set-hostname", { name: name.trim() });
      setMessage({ kind: "success", text: t("system.renamed") });
    } catch (err) {
      setMessage({ kind: "error", text: errorText(err) });
    } finally {
      setSaving(false);
    }
  };

  const changeLanguage = async (language) => {
    setLangError(null);
    setLangBusy(true);
    setLanguage(language); // show it at once; the patch from the server confirms it
    try {
      await call("server.set-language", { language });
    } catch (err) {
      setLanguage(info.language || "en");
      setLangError(errorText(err));
    } finally {
      setLangBusy(false);
    }
  };

  return html`<${Card} title=${t("system.general")} icon="globe">
    <form class="inline-form" onSubmit=${rename} novalidate>
      <${Field} id="system-name" label=${t("system.name")} error=${name && problem ? problem : null}
        hint=${t("system.nameHint")}>
        <div class="input-row">
          <input id="system-name" class="input" value=${name} onInput=${(e) => setName(e.currentTarget.value)} autocomplete="off" />
          <${Button} type="submit" variant="secondary" loading=${saving}
            disabled=${Boolean(problem) || name.trim() === info.name}>${t("common.save")}</${Button}>
        </div>
      </${Field}>
      ${message ? html`<${Alert} kind=${message.kind}>${message.text}</${Alert}>` : null}
    </form>
    <${Field} id="system-language" label=${t("common.language")} error=${langError}>
      <div class="input-row language-field">
        <${LanguageSelect} id="system-language" value=${info.language && info.language in LANGUAGES ? info.language : "en"}
          onChange=${changeLanguage} disabled=${langBusy} />
        ${langBusy ? html`<${Spinner} size="sm" />` : null}
      </div>
    </${Field}>
  </${Card}>`;
}

function ChangePassword({ account, onChanged }) {
  const [oldPassword, setOld] = useState("");
  const [newPassword, setNew] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);
  const length = passwordLength(newPassword);
  const lengthOk = length >= PASSWORD_MIN && length <= PASSWORD_MAX;
  const matches = newPassword === confirm;
  const valid = oldPassword && lengthOk && matches;

  const submit = async (e) => {
    e.preventDefault();
    if (!valid) return;
    setBusy(true);
    setMessage(null);
    try {
      await call("auth.change-password", { oldPassword, newPassword });
      setOld("");
      setNew("");
      setConfirm("");
      setMessage({ kind: "success", text: t("system.passwordChanged") });
      onChanged();
    } catch (err) {
      setMessage({ kind: "error", text: err.code === 7 ? t("system.wrongOldPassword") : errorText(err) });
    } finally {
      setBusy(false);
    }
  };

  return html`<${Card} title=${t("system.password")} description=${t("system.passwordText")} icon="key">
    <form class="form-grid" onSubmit=${submit} novalidate data-testid="change-password">
      <${UsernameHint} value=${account} />
      <${Field} id="old-password" label=${t("system.oldPassword")}>
        <${PasswordInput} id="old-password" value=${oldPassword} onInput=${setOld} autocomplete="current-password" />
      </${Field}>
      <${Field} id="new-password" label=${t("system.newPassword")}
        error=${newPassword && !lengthOk ? t("password.rule.between", { min: PASSWORD_MIN, max: PASSWORD_MAX }) : null}
        hint=${t("password.rule.between", { min: PASSWORD_MIN, max: PASSWORD_MAX })}>
        <${PasswordInput} id="new-password" value=${newPassword} onInput=${setNew} autocomplete="new-password" />
      </${Field}>
      <${Field} id="confirm-password" label=${t("setup.password.confirm")}
        error=${confirm && !matches ? t("setup.password.mismatch") : null}>
        <${PasswordInput} id="confirm-password" value=${confirm} onInput=${setConfirm} autocomplete="new-password" />
      </${Field}>
      ${message ? html`<${Alert} kind=${message.kind} testid="password-message">${message.text}</${Alert}>` : null}
      <div class="form-actions form-actions-end">
        <${Button} type="submit" loading=${busy} disabled=${!valid}>${t("system.changePassword")}</${Button}>
      </div>
    </form>
  </${Card}>`;
}

// A short, readable name for a session's client, from its User-Agent.
export function describeAgent(agent) {
  if (!agent) return t("system.unknownClient");
  if (/start-cli/i.test(agent)) return "start-cli";
  const browser = /Edg\//.test(agent) ? "Edge" : /Firefox\//.test(agent) ? "Firefox" : /Chrom(e|ium)\//.test(agent)
    ? "Chromium" : /Safari\//.test(agent) ? "Safari" : /curl\//.test(agent) ? "curl" : /python/i.test(agent) ? "Python" : null;
  const os = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS" : /Mac OS X/.test(agent) ? "macOS"
    : /Windows/.test(agent) ? "Windows" : /Linux/.test(agent) ? "Linux" : null;
  if (browser && os) return t("system.clientOn", { browser, os });
  return browser || agent.split(" ")[0];
}

function Sessions({ version }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null);

  const load = useCallback(async () => {
    try {
      setList(await call("auth.session.list", {}));
      setError(null);
    } catch (err) {
      setError(errorText(err));
    }
  }, []);

  useEffect(() => {
    load();
  }, [load, version]);

  const kill = async (ids, key) => {
    setBusy(key);
    try {
      await call("auth.session.kill", { ids });
      await load();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };

  const entries = list ? Object.entries(list.sessions || {}) : [];
  entries.sort(([a, x], [b, y]) => (a === list.current ? -1 : b === list.current ? 1 : String(y.lastActive).localeCompare(String(x.lastActive))));
  const others = entries.filter(([id]) => id !== (list && list.current)).map(([id]) => id);

  return html`<${Card} title=${t("system.sessions")} description=${t("system.sessionsText")} icon="monitor" testid="sessions"
    actions=${others.length > 1 ? html`<${Button} variant="secondary" size="sm" loading=${busy === "all"}
      onClick=${() => kill(others, "all")}>${t("system.killOthers")}</${Button}>` : null}>
    ${error ? html`<${Alert} kind="error">${error}</${Alert}>` : null}
    ${list === null && !error ? html`<div class="loading"><${Spinner} /></div>` : null}
    ${list ? html`<ul class="sessions">
      ${entries.map(([id, session]) => html`<li key=${id} data-testid="session">
        <span class="session-icon"><${Icon} name="monitor" /></span>
        <div class="session-main">
          <strong title=${session.userAgent || ""}>${describeAgent(session.userAgent)}</strong>
          <span class="muted small">${t("system.loggedIn", { when: formatRelative(session.loggedIn) })}${" · "}${t("system.lastActive", { when: formatRelative(session.lastActive) })}</span>
          ${session.expiresAt ? html`<span class="muted small" data-testid="session-expires" title=${formatDate(session.expiresAt)}>${t("system.expires", { when: formatRelative(session.expiresAt) })}</span>` : null}
        </div>
        ${id === list.current ? html`<span class="pill pill-accent">${t("system.thisSession")}</span>`
          : html`<${Button} variant="ghost" size="sm" loading=${busy === id} onClick=${() => kill([id], id)}>${t("system.kill")}</${Button}>`}
      </li>`)}
    </ul>` : null}
  </${Card}>`;
}

export function SystemPage({ state }) {
  const info = (state && state.serverInfo) || {};
  const [sessionsVersion, setSessionsVersion] = useState(0);
  return html`<div class="stack system">
    <${About} info=${info} />
    <${General} info=${info} />
    <${ChangePassword} account=${localAddress(info.hostname)} onChanged=${() => setSessionsVersion((v) => v + 1)} />
    <${Sessions} version=${sessionsVersion} />
  </div>`;
}
