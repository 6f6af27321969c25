// Forms generated from an action's input spec (api-issue6 §1): one field per ValueSpec kind, values
// shaped as the server wants them. Client-side checks are a convenience; the server decides, and
// its refusal ("<Field>: <problem>") is shown on the field it names (or above the form).
import { html, useEffect, useState } from "./html.js";
import { t } from "./i18n.js";
import { Button, Icon, PasswordInput } from "./ui.js";

// -- values --------------------------------------------------------------------------------------

/** The starting value of one field from its declaration. */
export function defaultOf(spec) {
  switch (spec.type) {
    case "toggle": return spec.default ?? false;
    case "multiselect": return [...(spec.default || [])];
    case "list": return structuredClone(spec.default || []);
    case "object": return defaultsOf(spec.spec);
    case "union":
      return spec.default && spec.variants[spec.default]
        ? { selection: spec.default, value: defaultsOf(spec.variants[spec.default].spec) } : null;
    default: return spec.default ?? null;
  }
}

/** The starting value of a whole form. */
export function defaultsOf(inputSpec) {
  const out = {};
  for (const [key, spec] of Object.entries(inputSpec || {})) out[key] = defaultOf(spec);
  return out;
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * `partial` laid over `base`: objects merge key by key, a union merges when the selection is the
 * same (else the partial's variant replaces it), anything else is replaced. Used for a task's
 * prefilled input over the action's current one, and for the current one over the defaults.
 */
export function mergeValue(base, partial) {
  if (partial === undefined) return base;
  if (isPlainObject(base) && isPlainObject(partial)) {
    if ("selection" in partial && "selection" in base && partial.selection !== base.selection) return structuredClone(partial);
    const out = { ...base };
    for (const [key, value] of Object.entries(partial)) out[key] = mergeValue(base[key], value);
    return out;
  }
  return structuredClone(partial);
}

/** Empty texts become null, so an optional field left blank is "not set" rather than "". */
export function normalize(inputSpec, value) {
  const out = {};
  for (const [key, spec] of Object.entries(inputSpec || {})) out[key] = normalizeOne(spec, value ? value[key] : undefined);
  return out;
}

function normalizeOne(spec, value) {
  if (value === undefined) return defaultOf(spec);
  switch (spec.type) {
    case "text": case "textarea": case "datetime": case "color": return value === "" ? null : value;
    case "number": return typeof value === "number" ? value : value === "" || value == null ? null : Number(value);
    case "object": return normalize(spec.spec, value);
    case "list": return spec.spec.type === "object" ? (value || []).map((item) => normalize(spec.spec.spec, item))
      : (value || []).map((item) => normalizeOne(spec.spec, item));
    case "union": return value && spec.variants[value.selection]
      ? { selection: value.selection, value: normalize(spec.variants[value.selection].spec, value.value) } : null;
    default: return value;
  }
}

// -- client-side checks --------------------------------------------------------------------------

function pathKey(path) {
  return path.join("/");
}

/** Problems the browser can see before sending: {pathKey: message}; empty when none. */
export function validate(inputSpec, value, path = [], out = {}) {
  for (const [key, spec] of Object.entries(inputSpec || {})) checkOne(spec, value ? value[key] : undefined, [...path, key], out);
  return out;
}

function checkOne(spec, value, path, out) {
  const fail = (message) => { out[pathKey(path)] = message; };
  const empty = value === null || value === undefined || value === "";
  switch (spec.type) {
    case "text": case "textarea": {
      if (empty) { if (spec.required) fail(t("form.required")); return; }
      if (spec.minLength != null && value.length < spec.minLength) return fail(t("form.minLength", { min: spec.minLength }));
      if (spec.maxLength != null && value.length > spec.maxLength) return fail(t("form.maxLength", { max: spec.maxLength }));
      for (const pattern of spec.patterns || []) {
        let regex = null;
        try {
          regex = new RegExp(pattern.regex, "u");
        } catch {
          continue; // a Python-only construct: the server checks it
        }
        if (!regex.test(value)) return fail(pattern.description || t("form.pattern"));
      }
      return;
    }
    case "number": {
      if (empty) { if (spec.required) fail(t("form.required")); return; }
      const number = Number(value);
      if (!Number.isFinite(number)) return fail(t("form.number"));
      if (spec.integer && !Number.isInteger(number)) return fail(t("form.integer"));
      if (spec.min != null && number < spec.min) return fail(t("form.min", { min: spec.min }));
      if (spec.max != null && number > spec.max) return fail(t("form.max", { max: spec.max }));
      return;
    }
    case "select": case "color": case "datetime": case "union":
      if (empty && spec.required) fail(t("form.required"));
      if (spec.type === "datetime" && !empty) {
        if (spec.min && value < spec.min) fail(t("form.min", { min: spec.min }));
        if (spec.max && value > spec.max) fail(t("form.max", { max: spec.max }));
      }
      if (spec.type === "union" && !empty && spec.variants[value.selection]) {
        validate(spec.variants[value.selection].spec, value.value, [...path, "value"], out);
      }
      return;
    case "multiselect": case "list": {
      const items = value || [];
      if (spec.minLength != null && items.length < spec.minLength) return fail(t("form.minItems", { min: spec.minLength }));
      if (spec.maxLength != null && items.length > spec.maxLength) return fail(t("form.maxItems", { max: spec.maxLength }));
      if (spec.type === "list") {
        items.forEach((item, index) => (spec.spec.type === "object"
          ? validate(spec.spec.spec, item, [...path, String(index)], out) : checkOne(spec.spec, item, [...path, String(index)], out)));
      }
      return;
    }
    case "object": validate(spec.spec, value, path, out); return;
    default:
  }
}

/**
 * Where the server's "<Field>: <problem>" belongs: {key, message} for the field its label path names
 * (the server joins labels with " › ": "Advanced › Port", "Users › User 2 › Login", "Backend ›
 * Remote › URL"), else {key: null, message} for the whole form.
 */
export function placeServerError(inputSpec, text, value) {
  const message = String(text || "");
  const found = [];
  const walk = (spec, current, path, labels) => {
    for (const [key, item] of Object.entries(spec || {})) {
      const here = [...path, key];
      const named = [...labels, item.name];
      const v = current ? current[key] : undefined;
      found.push({ key: pathKey(here), labels: named });
      if (item.type === "object") walk(item.spec, v, here, named);
      if (item.type === "union") {
        for (const variant of Object.values(item.variants || {})) walk(variant.spec, v && v.value, [...here, "value"], [...named, variant.name]);
      }
      if (item.type === "list") {
        (Array.isArray(v) ? v : []).forEach((entry, i) => {
          const at = [...here, String(i)];
          const itemLabels = [...named, `${item.spec.name} ${i + 1}`];
          found.push({ key: pathKey(at), labels: itemLabels });
          if (item.spec.type === "object") walk(item.spec.spec, entry, at, itemLabels);
        });
      }
    }
  };
  walk(inputSpec, value, [], []);
  const colon = message.indexOf(": ");
  if (colon > 0) {
    const head = message.slice(0, colon);
    const problem = message.slice(colon + 2);
    const exact = found.find(({ labels }) => head === labels.join(" \u203a ") || head === labels.join(" / "));
    if (exact) return { key: exact.key, message: problem };
    const top = found.find(({ labels }) => labels.length === 1 && head === labels[0]);
    if (top) return { key: top.key, message: problem };
  }
  return { key: null, message };
}

// -- fields --------------------------------------------------------------------------------------

function fieldId(prefix, path) {
  return `${prefix}-${path.join("-")}`.replace(/[^\w-]/g, "_");
}

/** What describes a field's control, for aria-describedby: the ids of its hint, warning and error. */
function describedBy(id, spec, error) {
  const ids = [spec.description ? `${id}-hint` : null, spec.warning ? `${id}-warning` : null, error ? `${id}-error` : null];
  return ids.filter(Boolean).join(" ") || null;
}

function Label({ id, spec, required }) {
  return html`<label for=${id}>${spec.name}${required ? html`<span class="required" aria-hidden="true"> *</span>` : null}</label>`;
}

function FieldShell({ id, spec, path, error, required, children, legend = false, describe = false }) {
  const hint = spec.description;
  const head = legend
    ? html`<legend>${spec.name}${required ? html`<span class="required" aria-hidden="true"> *</span>` : null}</legend>`
    : html`<${Label} id=${id} spec=${spec} required=${required} />`;
  const Tag = legend ? "fieldset" : "div";
  // ``describe``: a group with no one control (a list, an object, checkboxes) is described as a whole.
  return html`<${Tag} class=${`field${legend ? " fieldset" : ""}${error ? " field-invalid" : ""}`}
      aria-describedby=${describe ? describedBy(id, spec, error) : null}
      data-testid="form-field" data-path=${pathKey(path)} data-kind=${spec.type}>
    ${head}
    ${hint ? html`<p class="field-hint" id=${`${id}-hint`}>${hint}</p>` : null}
    ${spec.warning ? html`<p class="field-warning" id=${`${id}-warning`}><${Icon} name="warning" size=${14} /> ${spec.warning}</p>` : null}
    ${children}
    ${error ? html`<p class="field-error" id=${`${id}-error`} data-testid="field-error">${error}</p>` : null}
  </${Tag}>`;
}

function NumberInput({ id, spec, value, onChange, invalid, described }) {
  // The text typed so far ("1." or "-"): a number state alone would rewrite it under the cursor.
  const [draft, setDraft] = useState(value == null ? "" : String(value));
  useEffect(() => {
    const parsed = draft === "" ? null : Number(draft);
    if (parsed !== value && !(typeof value === "string" && value === draft)) setDraft(value == null ? "" : String(value));
  }, [value]);
  const input = html`<input id=${id} class="input" type="number" inputmode=${spec.integer ? "numeric" : "decimal"}
    value=${draft} min=${spec.min ?? null} max=${spec.max ?? null} step=${spec.step ?? (spec.integer ? 1 : "any")}
    placeholder=${spec.placeholder || null} aria-invalid=${invalid ? "true" : null} aria-describedby=${described}
    onInput=${(e) => {
      const text = e.currentTarget.value;
      setDraft(text);
      const number = Number(text);
      onChange(text === "" ? null : Number.isFinite(number) ? number : text);
    }} />`;
  return spec.units ? html`<div class="input-row input-units">${input}<span class="units">${spec.units}</span></div>` : input;
}

function textType(spec) {
  return { email: "email", tel: "tel", url: "url" }[spec.inputmode] || "text";
}

/** One field of any kind; nested kinds recurse through SpecFields. */
function ValueField({ spec, value, onChange, path, errors, prefix }) {
  const id = fieldId(prefix, path);
  const error = errors[pathKey(path)];
  const invalid = Boolean(error);
  const described = describedBy(id, spec, error);
  const shell = (children, extra = {}) => html`<${FieldShell} id=${id} spec=${spec} path=${path} error=${error}
    required=${extra.required ?? spec.required} legend=${extra.legend} describe=${extra.describe}>${children}</${FieldShell}>`;
  switch (spec.type) {
    case "text":
      return shell(spec.masked
        ? html`<${PasswordInput} id=${id} value=${value ?? ""} onInput=${onChange} autocomplete="new-password" invalid=${invalid}
            placeholder=${spec.placeholder || null} aria-describedby=${described} />`
        : html`<input id=${id} class="input" type=${textType(spec)} inputmode=${spec.inputmode || null} value=${value ?? ""}
            placeholder=${spec.placeholder || null} aria-invalid=${invalid ? "true" : null} aria-describedby=${described}
            spellcheck="false" onInput=${(e) => onChange(e.currentTarget.value)} />`);
    case "textarea":
      return shell(html`<textarea id=${id} class=${`input textarea${spec.masked ? " masked" : ""}`} rows="4" value=${value ?? ""}
        placeholder=${spec.placeholder || null} aria-invalid=${invalid ? "true" : null} aria-describedby=${described}
        spellcheck="false" onInput=${(e) => onChange(e.currentTarget.value)}></textarea>`);
    case "number":
      return shell(html`<${NumberInput} id=${id} spec=${spec} value=${value} onChange=${onChange} invalid=${invalid} described=${described} />`);
    case "toggle":
      return html`<div class=${`field field-toggle${invalid ? " field-invalid" : ""}`} data-testid="form-field" data-path=${pathKey(path)} data-kind="toggle">
        <label class="switch" for=${id}>
          <input id=${id} type="checkbox" role="switch" checked=${Boolean(value)} aria-invalid=${invalid ? "true" : null}
            aria-describedby=${described} onChange=${(e) => onChange(e.currentTarget.checked)} />
          <span class="switch-track" aria-hidden="true"></span>
          <span>${spec.name}</span>
        </label>
        ${spec.description ? html`<p class="field-hint" id=${`${id}-hint`}>${spec.description}</p>` : null}
        ${spec.warning ? html`<p class="field-warning" id=${`${id}-warning`}><${Icon} name="warning" size=${14} /> ${spec.warning}</p>` : null}
        ${error ? html`<p class="field-error" id=${`${id}-error`} data-testid="field-error">${error}</p>` : null}
      </div>`;
    case "select":
      return shell(html`<select id=${id} class="select" value=${value ?? ""} aria-invalid=${invalid ? "true" : null}
          aria-describedby=${described} onChange=${(e) => onChange(e.currentTarget.value === "" ? null : e.currentTarget.value)}>
        ${value == null || !spec.required ? html`<option value="">${t("form.choose")}</option>` : null}
        ${Object.entries(spec.values).map(([key, label]) => html`<option value=${key}>${label}</option>`)}
      </select>`);
    case "multiselect": {
      const chosen = new Set(value || []);
      const toggle = (key, on) => onChange(Object.keys(spec.values).filter((k) => (k === key ? on : chosen.has(k))));
      return shell(html`<div class="checks-list">
        ${Object.entries(spec.values).map(([key, label]) => html`<label class="check">
          <input type="checkbox" value=${key} checked=${chosen.has(key)} onChange=${(e) => toggle(key, e.currentTarget.checked)} />
          <span>${label}</span></label>`)}
      </div>`, { legend: true, required: spec.minLength > 0, describe: true });
    }
    case "color":
      return shell(html`<div class="input-row color-row">
        <input id=${id} class="color-input" type="color" value=${value || "#000000"} aria-describedby=${described}
          onInput=${(e) => onChange(e.currentTarget.value.toLowerCase())} />
        <code class="muted">${value || t("form.notSet")}</code>
        ${value && !spec.required ? html`<${Button} variant="ghost" size="sm" onClick=${() => onChange(null)}>${t("form.clear")}</${Button}>` : null}
      </div>`);
    case "datetime":
      return shell(html`<input id=${id} class="input" type=${spec.inputmode || "datetime-local"} value=${value ?? ""}
        min=${spec.min || null} max=${spec.max || null} aria-invalid=${invalid ? "true" : null} aria-describedby=${described}
        onInput=${(e) => onChange(e.currentTarget.value)} />`);
    case "object":
      return shell(html`<${SpecFields} spec=${spec.spec} value=${value || {}} onChange=${onChange} path=${path} errors=${errors}
        prefix=${prefix} />`, { legend: true, required: false, describe: true });
    case "union": {
      const selection = value && value.selection;
      const variant = selection && spec.variants[selection];
      return shell(html`<select id=${id} class="select" value=${selection ?? ""} aria-invalid=${invalid ? "true" : null}
          aria-label=${spec.name} aria-describedby=${described} onChange=${(e) => {
            const key = e.currentTarget.value;
            onChange(key ? { selection: key, value: defaultsOf(spec.variants[key].spec) } : null);
          }}>
          ${!selection || !spec.required ? html`<option value="">${t("form.choose")}</option>` : null}
          ${Object.entries(spec.variants).map(([key, v]) => html`<option value=${key}>${v.name}</option>`)}
        </select>
        ${variant ? html`<div class="union-fields"><${SpecFields} spec=${variant.spec} value=${value.value || {}}
          onChange=${(next) => onChange({ selection, value: next })} path=${[...path, "value"]} errors=${errors} prefix=${prefix} /></div>` : null}`,
      { legend: true });
    }
    case "list":
      return shell(html`<${ListItems} spec=${spec} value=${value || []} onChange=${onChange} path=${path} errors=${errors}
        prefix=${prefix} />`, { legend: true, required: spec.minLength > 0, describe: true });
    default:
      return shell(html`<p class="muted small">${t("form.unsupported", { type: spec.type })}</p>`);
  }
}

function ListItems({ spec, value, onChange, path, errors, prefix }) {
  const item = spec.spec;
  const set = (index, next) => onChange(value.map((v, i) => (i === index ? next : v)));
  const remove = (index) => onChange(value.filter((_, i) => i !== index));
  const add = () => onChange([...value, item.type === "object" ? defaultsOf(item.spec) : (item.default ?? "")]);
  const full = spec.maxLength != null && value.length >= spec.maxLength;
  return html`<div class="list-items">
    ${value.map((entry, index) => {
      const here = [...path, String(index)];
      const removeButton = html`<button type="button" class="icon-btn danger" onClick=${() => remove(index)}
        aria-label=${t("form.remove")} title=${t("form.remove")} data-testid="list-remove"><${Icon} name="trash" size=${16} /></button>`;
      if (item.type === "object") {
        return html`<div class="list-item list-item-object" key=${index} data-testid="list-item">
          <div class="row-between"><strong class="small">${item.name} ${index + 1}</strong>${removeButton}</div>
          <${SpecFields} spec=${item.spec} value=${entry || {}} onChange=${(next) => set(index, next)} path=${here}
            errors=${errors} prefix=${prefix} />
        </div>`;
      }
      const error = errors[pathKey(here)];
      const errorId = `${fieldId(prefix, here)}-error`;
      return html`<div class="list-item" key=${index} data-testid="list-item">
        <div class="input-row">
          <input class="input" type=${item.masked ? "password" : textType(item)} value=${entry ?? ""} aria-label=${`${item.name || spec.name} ${index + 1}`}
            placeholder=${item.placeholder || null} aria-invalid=${error ? "true" : null} aria-describedby=${error ? errorId : null}
            onInput=${(e) => set(index, e.currentTarget.value)} />
          ${removeButton}
        </div>
        ${error ? html`<p class="field-error" id=${errorId} data-testid="field-error">${error}</p>` : null}
      </div>`;
    })}
    <div><${Button} variant="secondary" size="sm" icon="plus" disabled=${full} onClick=${add} data-testid="list-add">${t("form.add")}</${Button}></div>
  </div>`;
}

/** The fields of an InputSpec, in declaration order. */
export function SpecFields({ spec, value, onChange, path = [], errors = {}, prefix = "form" }) {
  return html`${Object.entries(spec || {}).map(([key, item]) => html`<${ValueField} key=${key} spec=${item}
    value=${value ? value[key] : undefined} path=${[...path, key]} errors=${errors} prefix=${prefix}
    onChange=${(next) => onChange({ ...(value || {}), [key]: next })} />`)}`;
}

/**
 * A whole form: fields, a place for the server's refusal, and submit. onSubmit(value) gets the
 * normalized value and returns a promise; when it rejects, the error's text is placed on its field.
 */
export function InputForm({ spec, initial, onSubmit, onCancel, submitLabel, prefix = "form", testid = "input-form" }) {
  const [value, setValue] = useState(() => mergeValue(defaultsOf(spec), initial || {}));
  const [errors, setErrors] = useState({});
  const [serverError, setServerError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [tried, setTried] = useState(false);

  const change = (next) => {
    setValue(next);
    if (tried) setErrors(validate(spec, next));
  };
  const submit = async (event) => {
    event.preventDefault();
    setTried(true);
    const problems = validate(spec, value);
    setErrors(problems);
    setServerError(null);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      await onSubmit(normalize(spec, value));
    } catch (err) {
      const placed = placeServerError(spec, err && (err.details || err.message), value);
      if (placed.key) setErrors({ [placed.key]: placed.message });
      setServerError(placed);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="spec-form" noValidate onSubmit=${submit} data-testid=${testid}>
    ${serverError && !serverError.key ? html`<div class="alert alert-error" role="alert" data-testid="server-error">
      <${Icon} name="error" /><div>${serverError.message}</div></div>` : null}
    ${serverError && serverError.key ? html`<p class="visually-hidden" role="alert" data-testid="server-error">${serverError.message}</p>` : null}
    <${SpecFields} spec=${spec} value=${value} onChange=${change} errors=${errors} prefix=${prefix} />
    <div class="dialog-actions">
      ${onCancel ? html`<${Button} variant="ghost" onClick=${onCancel} disabled=${busy}>${t("common.cancel")}</${Button}>` : null}
      <${Button} type="submit" loading=${busy} data-testid="form-submit">${submitLabel || t("common.save")}</${Button}>
    </div>
  </form>`;
}
