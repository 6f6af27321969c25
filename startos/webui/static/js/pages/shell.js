// The main layout once logged in: a dark sidebar (a drawer on phones), a top bar, one page.
// Everything shown comes from the live copy of /public kept by live.js.
import { html, useEffect, useRef, useState } from "../html.js";
import { setLanguage, t } from "../i18n.js";
import { follow } from "../live.js";
import { Code, call } from "../rpc.js";
import { Alert, Icon, Spinner, errorText, localAddress } from "../ui.js";
import { NotificationsPage } from "./notifications.js";
import { MarketplacePage, UpdatesPage } from "./placeholders.js";
import { ServicesPage } from "./services.js";
import { SETUP_LANGUAGE_KEY } from "./setup.js";
import { SideloadPage } from "./sideload.js";
import { SystemPage } from "./system.js";

export const PAGES = [
  { id: "services", icon: "services", component: ServicesPage },
  { id: "marketplace", icon: "marketplace", component: MarketplacePage },
  { id: "sideload", icon: "sideload", component: SideloadPage },
  { id: "updates", icon: "updates", component: UpdatesPage },
  { id: "system", icon: "system", component: SystemPage },
  { id: "notifications", icon: "notifications", component: NotificationsPage },
];

export function pageFor(route) {
  return PAGES.find((page) => page.id === route) || PAGES[0];
}

function NavLink({ page, active, badge, onNavigate }) {
  return html`<a href=${`#/${page.id}`} class=${active ? "nav-link active" : "nav-link"} aria-current=${active ? "page" : null}
      onClick=${onNavigate} data-testid=${`nav-${page.id}`}>
    <${Icon} name=${page.icon} />
    <span class="nav-label">${t(`nav.${page.id}`)}</span>
    ${badge ? html`<span class="badge" data-testid="unread-badge" aria-label=${t("nav.unread", { count: badge })}>
      ${badge > 99 ? "99+" : badge}</span>` : null}
  </a>`;
}

// The language chosen during setup becomes the server's after the first login.
async function adoptSetupLanguage(serverLanguage) {
  let chosen = null;
  try {
    chosen = sessionStorage.getItem(SETUP_LANGUAGE_KEY);
    sessionStorage.removeItem(SETUP_LANGUAGE_KEY);
  } catch {
    return;
  }
  if (chosen && chosen !== serverLanguage) {
    try {
      await call("server.set-language", { language: chosen });
    } catch {
      // the default language stays; the user can change it under System
    }
  }
}

// Where the sidebar stops being a drawer (app.css: the drawer is for max-width 860px).
const WIDE = "(min-width: 861px)";

/**
 * The phone drawer's keyboard behaviour: opening moves focus into it (to the current page's
 * link), Escape closes it, and closing returns focus to the menu button that opened it. While it
 * is open the rest of the page is inert (see Shell), so Tab reaches nothing behind it; a window
 * widened past the drawer's width closes it (its button is gone there).
 */
function useDrawerFocus(open, close) {
  const sidebarRef = useRef(null);
  const menuRef = useRef(null);
  const wasOpen = useRef(false);
  useEffect(() => {
    if (!open) {
      if (wasOpen.current && menuRef.current) menuRef.current.focus();
      wasOpen.current = false;
      return undefined;
    }
    wasOpen.current = true;
    const sidebar = sidebarRef.current;
    const first = sidebar && (sidebar.querySelector('[aria-current="page"]') || sidebar.querySelector("a[href], button"));
    if (first) first.focus();
    const onKey = (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault();
      close();
    };
    const wide = matchMedia(WIDE);
    const onWide = () => wide.matches && close();
    addEventListener("keydown", onKey);
    wide.addEventListener("change", onWide);
    return () => {
      removeEventListener("keydown", onKey);
      wide.removeEventListener("change", onWide);
    };
  }, [open]);
  return { sidebarRef, menuRef };
}

export function Shell({ route, onLoggedOut }) {
  const [data, setData] = useState(null); // {value, revision}
  const [status, setStatus] = useState("connecting");
  const [drawer, setDrawer] = useState(false);
  const [logoutError, setLogoutError] = useState(null);
  const [loggingOut, setLoggingOut] = useState(false);

  useEffect(() => {
    const live = follow({ onValue: (value, revision) => setData({ value, revision }), onStatus: setStatus });
    return () => live.stop();
  }, []);

  const info = (data && data.value && data.value.serverInfo) || {};
  const language = info.language;
  const name = info.name;

  useEffect(() => {
    if (!language) return;
    setLanguage(language);
    adoptSetupLanguage(language);
  }, [language]);

  useEffect(() => {
    document.title = name || "StartOS";
    return () => {
      document.title = "StartOS";
    };
  }, [name]);

  useEffect(() => setDrawer(false), [route]);
  const { sidebarRef, menuRef } = useDrawerFocus(drawer, () => setDrawer(false));

  const logout = async () => {
    setLoggingOut(true);
    setLogoutError(null);
    try {
      await call("auth.logout", {});
    } catch (err) {
      if (err.code !== Code.AUTHORIZATION) {
        setLogoutError(errorText(err));
        setLoggingOut(false);
        return;
      }
    }
    onLoggedOut();
  };

  if (!data) {
    return html`<div class="splash" role="status">
      <${Spinner} size="lg" />
      <p>${status === "reconnecting" ? t("live.reconnecting") : t("live.connecting")}</p>
    </div>`;
  }

  const page = pageFor(route);
  const Page = page.component;
  const unread = Number(info.unreadNotificationCount || 0);

  return html`<div class=${drawer ? "shell drawer-open" : "shell"}>
    <aside class="sidebar" id="sidebar" aria-label=${t("nav.label")} ref=${sidebarRef}>
      <div class="sidebar-head">
        <div class="brand">
          <img src="/static/img/logo.svg" alt="" width="32" height="32" />
          <div class="brand-text">
            <span class="brand-name" data-testid="server-name">${name}</span>
            <span class="brand-sub">${localAddress(info.hostname)}</span>
          </div>
        </div>
        <button type="button" class="icon-btn sidebar-close" onClick=${() => setDrawer(false)} aria-label=${t("nav.close")}
            data-testid="drawer-close">
          <${Icon} name="close" />
        </button>
      </div>
      <nav class="nav">
        ${PAGES.map((p) => html`<${NavLink} page=${p} active=${p.id === page.id}
          badge=${p.id === "notifications" ? unread : 0} onNavigate=${() => setDrawer(false)} />`)}
      </nav>
      <div class="sidebar-foot">
        ${logoutError ? html`<p class="sidebar-error" role="alert">${logoutError}</p>` : null}
        <button type="button" class="nav-link logout" onClick=${logout} disabled=${loggingOut} data-testid="logout">
          <${Icon} name="logout" /><span class="nav-label">${t("nav.logout")}</span>
        </button>
        <span class="version">StartOS ${info.version || ""}</span>
      </div>
    </aside>
    <div class="scrim" onClick=${() => setDrawer(false)}></div>
    <div class="main" inert=${drawer}>
      <header class="topbar">
        <button type="button" class="icon-btn menu-btn" onClick=${() => setDrawer(true)} aria-label=${t("nav.open")}
            aria-expanded=${drawer ? "true" : "false"} aria-controls="sidebar" ref=${menuRef} data-testid="menu">
          <${Icon} name="menu" />
          ${unread ? html`<span class="dot"></span>` : null}
        </button>
        <h1 class="page-title">${t(`nav.${page.id}`)}</h1>
        <span class=${`live live-${status}`} title=${t(`live.${status}`)}>
          <span class="live-dot"></span><span class="live-text">${t(`live.${status}`)}</span>
        </span>
      </header>
      ${status === "reconnecting" ? html`<div class="banner"><${Alert} kind="warning">${t("live.lost")}</${Alert}></div>` : null}
      <main class="content" id="content">
        <${Page} state=${data.value} revision=${data.revision} />
      </main>
    </div>
  </div>`;
}
