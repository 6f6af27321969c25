// Live logs of one service: package.logs for the latest lines, then package.logs.follow and the
// WebSocket /ws/rpc/<guid> for new ones ({cursor, timestamp, boot, source, message}). Cursors only
// grow, so a reconnect asks for a few recent lines again and keeps those past the last one shown.
// The view follows the end unless the user scrolled up; then it pauses and counts what arrived.
import { html, useEffect, useRef, useState } from "../html.js";
import { useLayoutEffect } from "preact/hooks";
import { currentLanguage, t } from "../i18n.js";
import { Code, call } from "../rpc.js";
import { downloadText } from "../ui.js";
import { ActionButton, Glyph } from "./service-common.js";

const FIRST_PAGE = 200; // lines shown on opening
const CATCH_UP = 200; // recent lines asked for again on (re)connecting, to close the gap
const OLDER_PAGE = 500;
const KEEP = 5000; // lines kept in the page; older ones are dropped (and can be loaded again)
const MAX_BACKOFF_MS = 15_000;
const AT_END_PX = 24;

function timeOf(entry) {
  const date = new Date(entry.timestamp * 1000);
  return new Intl.DateTimeFormat(currentLanguage(), {
    hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hour12: false,
  }).format(date);
}

function sourceKind(source) {
  if (source === "startos") return "system";
  if (/stderr$/.test(source)) return "stderr";
  return "stdout";
}

function asText(lines) {
  return lines.map((e) => `${new Date(e.timestamp * 1000).toISOString()} ${e.source}: ${e.message}`).join("\n") + "\n";
}

/** Follow a service's journal; returns {lines, status, older, loadOlder}. */
function useLogStream(id) {
  const [lines, setLines] = useState([]);
  const [status, setStatus] = useState("connecting"); // connecting | live | reconnecting
  const [older, setOlder] = useState(false); // more lines exist before the first shown
  const last = useRef(null); // cursor of the newest line shown
  const first = useRef(null);

  useEffect(() => {
    let stopped = false;
    let socket = null;
    let timer = null;
    let flushTimer = null;
    let attempt = 0;
    let pending = [];

    const flush = () => {
      flushTimer = null;
      const batch = pending;
      pending = [];
      if (!batch.length || stopped) return;
      setLines((prev) => {
        const next = prev.concat(batch);
        if (next.length <= KEEP) return next;
        setOlder(true);
        const kept = next.slice(next.length - KEEP);
        first.current = kept[0].cursor;
        return kept;
      });
    };
    const take = (entries) => {
      for (const entry of entries) {
        if (last.current !== null && entry.cursor <= last.current) continue;
        last.current = entry.cursor;
        if (first.current === null) first.current = entry.cursor;
        pending.push(entry);
      }
      // Lines come one message each: paint them in batches, not one render per line.
      if (pending.length && flushTimer === null) flushTimer = setTimeout(flush, 40);
    };

    const retry = () => {
      if (stopped) return;
      attempt += 1;
      setStatus("reconnecting");
      timer = setTimeout(connect, Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt - 1, 5)));
    };

    async function connect() {
      if (stopped) return;
      let guid;
      try {
        if (last.current === null) {
          const page = await call("package.logs", { id, limit: FIRST_PAGE });
          if (stopped) return;
          setOlder(page.entries.length >= FIRST_PAGE);
          take(page.entries);
          if (last.current === null) last.current = 0; // an empty journal: every line is new
        }
        ({ guid } = await call("package.logs.follow", { id, limit: CATCH_UP }));
      } catch (err) {
        if (err.code === Code.AUTHORIZATION) return;
        return retry();
      }
      if (stopped) return;
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${scheme}://${location.host}/ws/rpc/${guid}`);
      socket = ws;
      ws.onopen = () => {
        attempt = 0;
        setStatus("live");
      };
      ws.onmessage = (event) => {
        try {
          take([JSON.parse(event.data)]);
        } catch {
          // not a log line: ignore it
        }
      };
      ws.onclose = () => {
        if (socket === ws) socket = null;
        retry(); // the journal closed (service rebuilt or updated) or the connection dropped
      };
    }

    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(flushTimer);
      if (socket) {
        socket.onclose = null;
        socket.close();
      }
    };
  }, [id]);

  const loadOlder = async () => {
    if (first.current === null) return 0;
    const page = await call("package.logs", { id, cursor: first.current, before: true, limit: OLDER_PAGE });
    setOlder(page.entries.length >= OLDER_PAGE);
    if (page.entries.length) {
      first.current = page.entries[0].cursor;
      setLines((prev) => page.entries.concat(prev));
    }
    return page.entries.length;
  };

  return { lines, status, older, loadOlder };
}

export function LogViewer({ id }) {
  const { lines, status, older, loadOlder } = useLogStream(id);
  const box = useRef(null);
  const [paused, setPaused] = useState(false);
  const [unseen, setUnseen] = useState(0);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const seenCount = useRef(0);
  const keepOffset = useRef(null); // after prepending older lines: keep the view where it was

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (keepOffset.current !== null) {
      el.scrollTop = el.scrollHeight - keepOffset.current;
      keepOffset.current = null;
    } else if (!paused) {
      el.scrollTop = el.scrollHeight;
    }
    const added = lines.length - seenCount.current;
    seenCount.current = lines.length;
    if (paused && added > 0) setUnseen((n) => n + added);
  }, [lines]);

  const onScroll = () => {
    const el = box.current;
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < AT_END_PX;
    if (atEnd && paused) {
      setPaused(false);
      setUnseen(0);
    } else if (!atEnd && !paused) {
      setPaused(true);
    }
  };

  const toEnd = () => {
    const el = box.current;
    setPaused(false);
    setUnseen(0);
    if (el) el.scrollTop = el.scrollHeight;
  };

  const showOlder = async () => {
    setLoadingOlder(true);
    try {
      const el = box.current;
      const fromBottom = el ? el.scrollHeight - el.scrollTop : null;
      keepOffset.current = fromBottom;
      const count = await loadOlder();
      if (!count) keepOffset.current = null;
    } catch {
      keepOffset.current = null;
    } finally {
      setLoadingOlder(false);
    }
  };

  const statusText = status === "live" ? (paused ? t("logs.paused") : t("logs.live"))
    : status === "reconnecting" ? t("logs.reconnecting") : t("logs.connecting");

  return html`<section class="card logs-card" data-testid="logs">
    <header class="card-header">
      <span class="card-icon"><${Glyph} name="file" size=${20} /></span>
      <div class="card-heading"><h2>${t("logs.title")}</h2></div>
      <div class="card-actions logs-actions">
        <span class=${`live live-${status === "live" ? (paused ? "paused" : "live") : "reconnecting"}`} data-testid="logs-status" data-status=${status}>
          <span class="live-dot"></span><span class="live-text">${statusText}</span>
        </span>
        <${ActionButton} variant="ghost" size="sm" glyph="download" disabled=${!lines.length}
          onClick=${() => downloadText(`${id}-logs.txt`, asText(lines))}>${t("logs.download")}</${ActionButton}>
      </div>
    </header>
    <div class="card-body logs-body">
      <div class="logs-box" ref=${box} onScroll=${onScroll} role="log" aria-live="off" aria-label=${t("logs.title")} tabindex="0"
          data-testid="log-lines">
        ${older ? html`<div class="logs-older"><${ActionButton} variant="secondary" size="sm" loading=${loadingOlder}
          onClick=${showOlder} data-testid="logs-older">${t("logs.older")}</${ActionButton}></div>` : null}
        ${lines.length ? lines.map((e) => html`<div key=${e.cursor} class=${`log-line log-${sourceKind(e.source)}`} data-testid="log-line">
          <time class="log-time" title=${new Date(e.timestamp * 1000).toLocaleString(currentLanguage())}>${timeOf(e)}</time>
          <span class="log-source">${e.source}</span>
          <span class="log-message">${e.message}</span>
        </div>`) : html`<p class="logs-empty">${status === "live" ? t("logs.empty") : t("logs.connecting")}</p>`}
      </div>
      ${paused ? html`<button type="button" class="logs-jump" onClick=${toEnd} data-testid="logs-jump">
        <${Glyph} name="arrowDown" size=${16} />
        ${unseen ? t("logs.newLines", { count: unseen }) : t("logs.jump")}
      </button>` : null}
    </div>
  </section>`;
}
