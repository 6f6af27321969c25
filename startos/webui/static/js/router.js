// The dashboard's one hash router: #/<page>/<segment>/... (#/services/hello-world). One hashchange
// listener for the whole page; components read the route with useRoute() and move with navigate().
import { useEffect, useState } from "./html.js";

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a stray "%" in a hand-typed address
  }
}

function parse() {
  const path = location.hash.replace(/^#\/?/, "");
  const parts = path.split("/").map(decode).filter(Boolean);
  return Object.freeze({ path, page: parts[0] || "", rest: Object.freeze(parts.slice(1)) });
}

let route = parse();
const listeners = new Set();

function changed() {
  const next = parse();
  if (next.path === route.path) return;
  route = next;
  listeners.forEach((fn) => fn(route));
}

addEventListener("hashchange", changed);

/** The route now: {path: "services/hello-world", page: "services", rest: ["hello-world"]}. */
export function currentRoute() {
  return route;
}

/** The route, re-rendering the calling component whenever it changes. */
export function useRoute() {
  const [value, setValue] = useState(route);
  useEffect(() => {
    listeners.add(setValue);
    setValue(route); // it may have moved between the first render and this effect
    return () => listeners.delete(setValue);
  }, []);
  return value;
}

/** The address of a route from its segments: hrefTo("services", "hello world") -> "#/services/hello%20world". */
export function hrefTo(...segments) {
  return `#/${segments.map((segment) => encodeURIComponent(segment)).join("/")}`;
}

/**
 * Go to a route ("services", or segments as hrefTo takes them). ``replace``: no history entry
 * (moving between the wizard, the login page and the shell is nothing to go "back" to).
 */
export function navigate(path, { replace = false } = {}) {
  const href = path.startsWith("#") ? path : `#/${path}`;
  if (replace) history.replaceState(null, "", href);
  else location.hash = href;
  changed(); // replaceState fires no hashchange; a repeated one is ignored
}
