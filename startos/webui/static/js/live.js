// The live copy of /public: db.subscribe gives a dump and a guid; the WebSocket /ws/rpc/<guid>
// then sends every revision as {id, patch} (RFC 6902), applied here with fast-json-patch.
// When the socket closes the client subscribes again, backing off up to 30 s.
import { applyPatch } from "fast-json-patch";
import { Code, call } from "./rpc.js";

const MAX_BACKOFF_MS = 30_000;

/**
 * Follow /public. onValue(value, revision) after the dump and after every revision;
 * onStatus("connecting" | "live" | "reconnecting"). Returns {stop()}.
 * An Authorization error (34) stops following: rpc.js has already told the app.
 */
export function follow({ onValue, onStatus }) {
  let stopped = false;
  let socket = null;
  let timer = null;
  let attempt = 0;
  let value = null;
  let revision = -1;

  function retry() {
    if (stopped) return;
    attempt += 1;
    onStatus("reconnecting");
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt - 1, 6));
    timer = setTimeout(subscribe, delay);
  }

  async function subscribe() {
    if (stopped) return;
    if (attempt === 0) onStatus("connecting");
    let result;
    try {
      result = await call("db.subscribe", { pointer: "/public" });
    } catch (err) {
      if (err.code === Code.AUTHORIZATION) return stop();
      return retry();
    }
    if (stopped) return;
    value = result.dump.value;
    revision = result.dump.id;
    onValue(value, revision);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/rpc/${result.guid}`);
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      onStatus("live");
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
        if (message.id <= revision) return; // already in the dump
        value = applyPatch(value, message.patch, false, true).newDocument;
      } catch {
        ws.close(); // our copy can no longer be trusted: start over from a fresh dump
        return;
      }
      revision = message.id;
      onValue(value, revision);
    };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      retry();
    };
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    if (socket) {
      socket.onclose = null;
      socket.close();
      socket = null;
    }
  }

  subscribe();
  return { stop };
}
