// JSON-RPC 2.0 over POST /rpc/v1 (same origin; the session travels in an HttpOnly cookie).

export const Code = Object.freeze({
  NETWORK: -1, // no answer at all (not a server code)
  BAD_RESPONSE: -2, // an answer that is not JSON-RPC (not a server code)
  INCORRECT_PASSWORD: 7,
  AUTHORIZATION: 34,
  RATE_LIMITED: 37,
  INVALID_REQUEST: 38,
  UNINITIALIZED: 40,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
});

export class RpcError extends Error {
  constructor(code, message, details) {
    super(details || message);
    this.name = "RpcError";
    this.code = code;
    this.details = details || message;
  }
}

const unauthorizedListeners = new Set();

/** Call fn(err) whenever any call answers Authorization (34): the session is gone. */
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

let nextId = 1;

export async function call(method, params = {}) {
  let response;
  try {
    response = await fetch("/rpc/v1", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
    });
  } catch (cause) {
    throw new RpcError(Code.NETWORK, String(cause));
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new RpcError(Code.BAD_RESPONSE, `HTTP ${response.status}`);
  }
  if (body && body.error) {
    const { code, message, data } = body.error;
    const err = new RpcError(code, message, data && data.details);
    if (code === Code.AUTHORIZATION) unauthorizedListeners.forEach((fn) => fn(err));
    throw err;
  }
  return body ? body.result : null;
}
