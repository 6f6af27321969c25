// One message catalog per language (static/i18n/<lang>.json) and t(key, params).
// Before login the language is the one last used in this browser, else the browser's; after
// login it follows /public/serverInfo/language. Switching re-renders everything at once.
import { useEffect, useState } from "./html.js";

export const LANGUAGES = Object.freeze({
  en: "English",
  fr: "Français",
  de: "Deutsch",
  pl: "Polski",
  es: "Español",
});

const STORAGE_KEY = "startos.language";
const catalogs = {};
const listeners = new Set();
let current = "en";
let wanted = "en";

async function load(lang) {
  if (!catalogs[lang]) {
    const response = await fetch(`/static/i18n/${lang}.json`);
    if (!response.ok) throw new Error(`no catalog for ${lang}`);
    catalogs[lang] = await response.json();
  }
  return catalogs[lang];
}

export function currentLanguage() {
  return current;
}

/** Switch the interface language; resolves once the catalog is loaded and applied. */
export async function setLanguage(lang) {
  if (!(lang in LANGUAGES)) lang = "en";
  wanted = lang;
  try {
    await Promise.all([load("en"), load(lang)]);
  } catch {
    lang = "en"; // a missing catalog must not leave the UI without words
  }
  if (wanted !== lang && wanted in catalogs) lang = wanted; // a later switch won the race
  current = lang;
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // storage disabled: the language just is not remembered
  }
  listeners.forEach((fn) => fn(lang));
}

/** The language to show before login. */
export function initialLanguage() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored in LANGUAGES) return stored;
  } catch {
    // storage disabled
  }
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).slice(0, 2).toLowerCase();
    if (base in LANGUAGES) return base;
  }
  return "en";
}

export function t(key, params) {
  const text = (catalogs[current] && catalogs[current][key]) ?? (catalogs.en && catalogs.en[key]) ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/**
 * A message the server wrote (a health message, why a service waits or failed, a daemon's last
 * exit): today plain text, later maybe {code, params, text}. A code this catalog translates
 * ("message.<code>") is shown in the user's language; anything else falls back to the server's text.
 */
export function messageText(value) {
  if (value == null) return "";
  if (typeof value !== "object") return String(value);
  const key = typeof value.code === "string" ? `message.${value.code}` : null;
  const known = key && [catalogs[current], catalogs.en].some((catalog) => catalog && Object.hasOwn(catalog, key));
  if (known) return t(key, value.params || {});
  return String(value.text ?? value.message ?? value.code ?? "");
}

/** Re-render the calling component whenever the language changes; returns the language. */
export function useLanguage() {
  const [lang, setLang] = useState(current);
  useEffect(() => {
    listeners.add(setLang);
    setLang(current);
    return () => listeners.delete(setLang);
  }, []);
  return lang;
}

export function formatDate(value) {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

export function formatRelative(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value || "");
  const seconds = (date.getTime() - Date.now()) / 1000;
  if (Math.abs(seconds) >= 5 * 604800) return formatDate(value);
  const rtf = new Intl.RelativeTimeFormat(current, { numeric: "auto" });
  const units = [["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size || unit === "second") return rtf.format(Math.round(seconds / size), unit);
  }
  return formatDate(value);
}
