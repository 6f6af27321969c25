// Notifications: listed with notification.list (they are not in the public tree); the list is
// fetched again whenever the live unread count changes, so new ones appear by themselves.
import { html, useCallback, useEffect, useRef, useState } from "../html.js";
import { formatDate, formatRelative, messageText, t } from "../i18n.js";
import { hrefTo } from "../router.js";
import { call } from "../rpc.js";
import { Alert, Button, EmptyState, Icon, Spinner, errorText } from "../ui.js";

const PAGE = 40;

/** Where a notification points in the dashboard: its own link (in-app routes only), else its service. */
function linkOf(item) {
  const link = item.data && typeof item.data === "object" ? item.data.link : null;
  if (typeof link === "string" && /^#\/[\w\-/?=&.]*$/.test(link)) return link;
  return item.packageId ? hrefTo("services", item.packageId) : null;
}

function Item({ item, busy, onSeen, onUnseen, onRemove }) {
  return html`<li class=${`notification level-${item.level}${item.seen ? "" : " unseen"}`} data-testid="notification"
      data-id=${item.id}>
    <span class="notification-icon"><${Icon} name=${item.level} /></span>
    <div class="notification-main">
      <div class="notification-head">
        <strong class="notification-title">${messageText(item.title)}</strong>
        ${item.seen ? null : html`<span class="unseen-dot" title=${t("notifications.unread")}></span>`}
      </div>
      ${item.message ? html`<p class="notification-message">${messageText(item.message)}</p>` : null}
      <span class="muted small">
        ${item.packageId ? html`<span class="pill pill-muted">${item.packageId}</span> ` : null}
        <time datetime=${item.createdAt} title=${formatDate(item.createdAt)}>${formatRelative(item.createdAt)}</time>
        ${linkOf(item) ? html` · <a href=${linkOf(item)} data-testid="notification-link">${t("notifications.open")}</a>` : null}
      </span>
    </div>
    <div class="notification-actions">
      ${item.seen
        ? html`<button type="button" class="icon-btn" disabled=${busy} onClick=${onUnseen} title=${t("notifications.markUnseen")}
            aria-label=${t("notifications.markUnseen")}><${Icon} name="notifications" size=${18} /></button>`
        : html`<button type="button" class="icon-btn" disabled=${busy} onClick=${onSeen} title=${t("notifications.markSeen")}
            aria-label=${t("notifications.markSeen")} data-testid="mark-seen"><${Icon} name="check" size=${18} /></button>`}
      <button type="button" class="icon-btn danger" disabled=${busy} onClick=${onRemove} title=${t("notifications.remove")}
        aria-label=${t("notifications.remove")} data-testid="remove"><${Icon} name="trash" size=${18} /></button>
    </div>
  </li>`;
}

export function NotificationsPage({ state }) {
  const unread = Number((state && state.serverInfo && state.serverInfo.unreadNotificationCount) || 0);
  const [items, setItems] = useState(null);
  const [more, setMore] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null);
  const [confirmClear, setConfirmClear] = useState(false);
  const shown = useRef(PAGE);

  const load = useCallback(async () => {
    try {
      const list = await call("notification.list", { limit: shown.current + 1 });
      setMore(list.length > shown.current);
      setItems(list.slice(0, shown.current));
      setError(null);
    } catch (err) {
      setError(errorText(err));
    }
  }, []);

  useEffect(() => {
    load();
  }, [load, unread]);

  const act = async (key, method, params) => {
    setBusy(key);
    setError(null);
    try {
      await call(method, params);
      await load();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };

  const newest = items && items.length ? items[0].id : null;
  const loadMore = async () => {
    shown.current += PAGE;
    setBusy("more");
    await load();
    setBusy(null);
  };

  const toolbar = html`<div class="toolbar">
    <p class="muted">${unread ? t("notifications.unreadCount", { count: unread }) : t("notifications.allRead")}</p>
    <div class="toolbar-actions">
      <${Button} variant="secondary" size="sm" icon="checkAll" disabled=${!unread || newest === null}
        loading=${busy === "all-seen"} data-testid="mark-all-seen"
        onClick=${() => act("all-seen", "notification.mark-seen-before", { before: newest + 1 })}>
        ${t("notifications.markAllSeen")}</${Button}>
      ${confirmClear
        ? html`<${Button} variant="danger" size="sm" icon="trash" loading=${busy === "clear"}
            onClick=${() => { setConfirmClear(false); act("clear", "notification.remove-before", { before: newest + 1 }); }}>
            ${t("notifications.confirmRemoveAll")}</${Button}>
          <${Button} variant="ghost" size="sm" onClick=${() => setConfirmClear(false)}>${t("common.cancel")}</${Button}>`
        : html`<${Button} variant="ghost" size="sm" icon="trash" disabled=${newest === null}
            onClick=${() => setConfirmClear(true)}>${t("notifications.removeAll")}</${Button}>`}
    </div>
  </div>`;

  if (items === null) {
    return error
      ? html`<${Alert} kind="error">${error}</${Alert}>`
      : html`<div class="loading" role="status"><${Spinner} label=${t("common.loading")} /></div>`;
  }
  if (!items.length) {
    return html`<div>${error ? html`<${Alert} kind="error">${error}</${Alert}>` : null}
      <${EmptyState} icon="notifications" title=${t("notifications.emptyTitle")}>${t("notifications.emptyText")}</${EmptyState}>
    </div>`;
  }
  return html`<div class="stack">
    ${toolbar}
    ${error ? html`<${Alert} kind="error">${error}</${Alert}>` : null}
    <ul class="notifications" data-testid="notifications">
      ${items.map((item) => html`<${Item} key=${item.id} item=${item} busy=${busy === item.id}
        onSeen=${() => act(item.id, "notification.mark-seen", { ids: [item.id] })}
        onUnseen=${() => act(item.id, "notification.mark-unseen", { ids: [item.id] })}
        onRemove=${() => act(item.id, "notification.remove", { ids: [item.id] })} />`)}
    </ul>
    ${more ? html`<div class="center"><${Button} variant="secondary" loading=${busy === "more"} onClick=${loadMore}>
      ${t("notifications.loadMore")}</${Button}></div>` : null}
  </div>`;
}
