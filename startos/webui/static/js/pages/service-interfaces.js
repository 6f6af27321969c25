// A service's interfaces (serviceInterfaces) and, for each, the table of addresses it can be reached
// at (hosts[hostId].bindings[port].addresses), where each address can be turned off and on.
import { html, useState } from "../html.js";
import { t } from "../i18n.js";
import { call } from "../rpc.js";
import { Alert, Card, Icon, errorText } from "../ui.js";
import { CopyTextButton, Modal, QrButton, QrImage, RevealButton } from "./service-actions.js";

// Protocol and product names: the same words in every language.
const TYPE_LABELS = { ui: "UI", api: "API", p2p: "P2P" };
const KIND_LABELS = { ipv4: "IPv4", ipv6: "IPv6", mdns: "mDNS" };

function typeLabel(type) {
  return TYPE_LABELS[type] || type;
}

function addressKind(kind) {
  if (kind === "domain") return t("interfaces.kind.domain");
  return KIND_LABELS[kind] || kind;
}

const DEFAULT_PORTS = { http: 80, https: 443, ws: 80, wss: 443 };

/** The address's URL: the server's when it gives one, else scheme://host:port from the interface. */
export function addressUrl(address, addressInfo) {
  if (address.url) return address.url;
  const info = addressInfo || {};
  const scheme = address.ssl ? info.sslScheme || "https" : info.scheme || "http";
  const host = address.kind === "ipv6" && !address.hostname.startsWith("[") ? `[${address.hostname}]` : address.hostname;
  const port = address.port && address.port !== DEFAULT_PORTS[scheme] ? `:${address.port}` : "";
  return scheme ? `${scheme}://${host}${port}` : `${host}${port}`;
}

/** The binding an interface is served through, or null. */
export function bindingOf(pkg, iface) {
  const info = iface && iface.addressInfo;
  const host = info && pkg && pkg.hosts && pkg.hosts[info.hostId];
  return (host && host.bindings && host.bindings[String(info.internalPort)]) || null;
}

function AddressRow({ id, iface, address, enabled, busy, revealed, onToggle, onQr }) {
  const url = addressUrl(address, iface.addressInfo);
  const shown = !iface.masked || revealed;
  return html`<tr data-testid="address" data-hostname=${address.hostname} data-kind=${address.kind} data-enabled=${String(enabled)}>
    <td>
      <label class="switch switch-compact" title=${enabled ? t("interfaces.disable") : t("interfaces.enable")}>
        <input type="checkbox" role="switch" checked=${enabled} disabled=${busy} onChange=${(e) => onToggle(address, e.currentTarget.checked)}
          aria-label=${t("interfaces.toggleLabel", { address: address.hostname })} data-testid="address-toggle" />
        <span class="switch-track" aria-hidden="true"></span>
      </label>
    </td>
    <td data-testid="address-access">${address.public ? t("interfaces.public") : t("interfaces.private")}</td>
    <td data-testid="address-type">${addressKind(address.kind)}</td>
    <td data-testid="address-ca">${address.ssl ? "Root CA" : t("interfaces.noCa")}</td>
    <td class="address-url"><code data-testid="address-url" data-masked=${shown ? "false" : "true"}>${shown ? url : "•".repeat(16)}</code></td>
    <td class="address-actions">
      ${iface.type === "ui" && enabled ? html`<a class="icon-btn" href=${url} target="_blank" rel="noopener noreferrer"
          title=${t("interfaces.open")} aria-label=${t("interfaces.open")} data-testid="address-open"><${Icon} name="arrowRight" size=${16} /></a>` : null}
      <${CopyTextButton} text=${url} testid="address-copy" />
      <${QrButton} pressed=${false} onClick=${() => onQr(url)} />
    </td>
  </tr>`;
}

export function AddressTable({ id, pkg, iface }) {
  const binding = bindingOf(pkg, iface);
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [revealed, setRevealed] = useState(false);
  const [qr, setQr] = useState(null);
  const addresses = (binding && binding.addresses) || {};
  const available = addresses.available || [];

  const toggle = async (address, enabled) => {
    setBusy(address.hostname);
    setError(null);
    try {
      await call("package.host.binding.set-address-enabled", {
        package: id, host: iface.addressInfo.hostId, internalPort: iface.addressInfo.internalPort, address: address.hostname, enabled,
      });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(null);
    }
  };

  if (!available.length) return html`<p class="muted small" data-testid="addresses-none">${t("interfaces.noAddresses")}</p>`;
  return html`<div class="addresses" data-testid="addresses">
    ${error ? html`<${Alert} kind="error" testid="addresses-error">${error}</${Alert}>` : null}
    ${iface.masked ? html`<div class="row-between addresses-mask"><span class="muted small">${t("interfaces.maskedText")}</span>
      <${RevealButton} shown=${revealed} onClick=${() => setRevealed(!revealed)} /></div>` : null}
    <div class="table-wrap"><table class="table addresses-table">
      <thead><tr>
        <th scope="col"><span class="visually-hidden">${t("interfaces.enabled")}</span></th>
        <th scope="col">${t("interfaces.access")}</th><th scope="col">${t("interfaces.type")}</th>
        <th scope="col">${t("interfaces.ca")}</th><th scope="col">URL</th>
        <th scope="col"><span class="visually-hidden">${t("actions.title")}</span></th>
      </tr></thead>
      <tbody>
        ${available.map((address) => html`<${AddressRow} key=${`${address.kind}/${address.hostname}/${address.port}`} id=${id} iface=${iface}
          address=${address} enabled=${address.enabled !== false} busy=${busy === address.hostname} revealed=${revealed}
          onToggle=${toggle} onQr=${setQr} />`)}
      </tbody>
    </table></div>
    ${qr ? html`<${Modal} title=${iface.name} onClose=${() => setQr(null)} testid="qr-dialog">
      <div class="qr-box"><${QrImage} text=${qr} label=${qr} /><code class="small">${iface.masked && !revealed ? "" : qr}</code></div>
    </${Modal}>` : null}
  </div>`;
}

export function Interfaces({ id, pkg }) {
  const [open, setOpen] = useState(null);
  const entries = Object.entries((pkg && pkg.serviceInterfaces) || {})
    .sort(([, a], [, b]) => String(a.name).localeCompare(String(b.name)));
  if (!entries.length) return null;
  return html`<${Card} title=${t("interfaces.title")} icon="globe" testid="interfaces">
    <ul class="interfaces">
      ${entries.map(([ifaceId, iface]) => {
        const expanded = open === ifaceId;
        return html`<li key=${ifaceId} class=${`interface${expanded ? " interface-open" : ""}`} data-testid="interface" data-id=${ifaceId}>
          <button type="button" class="interface-head" aria-expanded=${expanded ? "true" : "false"}
              onClick=${() => setOpen(expanded ? null : ifaceId)} data-testid="interface-open">
            <span class="pill pill-accent" data-testid="interface-type">${typeLabel(iface.type)}</span>
            <span class="interface-main">
              <strong>${iface.name || ifaceId}</strong>
              ${iface.description ? html`<span class="muted small">${iface.description}</span>` : null}
            </span>
            <${Icon} name="arrowRight" size=${16} class="interface-chevron" />
          </button>
          ${expanded ? html`<${AddressTable} id=${id} pkg=${pkg} iface=${iface} />` : null}
        </li>`;
      })}
    </ul>
  </${Card}>`;
}
