"""StartOS-info.html: what setup returns for the user to keep (the mDNS address and the root CA).

Part of ``setup.execute``'s result (the wizard offers it as a download, ``start-cli setup execute -o``
writes it), so it is built here with the handler rather than in the web layer.
"""

from __future__ import annotations

import html


def info_html(*, name: str, mdns_address: str, root_ca: str | None, fingerprint: str | None) -> str:
    """A self-contained page to keep: the server's address, its root CA and how to trust it."""
    e = html.escape
    ca_block = (
        f"""<h2>Root Certificate Authority</h2>
<p>Fingerprint (SHA-256): <code>{e(fingerprint or "")}</code></p>
<p><a download="{e(mdns_address)}.crt" href="data:application/x-pem-file;charset=utf-8,{e(_url_quote(root_ca))}">
Download the root CA</a> and trust it on each device you use to reach the server
(see "Trusting Your Root CA" in the docs).</p>
<pre>{e(root_ca)}</pre>"""
        if root_ca
        else "<p>No root CA was created.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>StartOS info: {e(name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d232a}}
code,pre{{background:#f2f4f7;border-radius:4px}}pre{{padding:1rem;overflow:auto;font-size:.8rem}}</style>
</head><body>
<h1>{e(name)}</h1>
<p>Keep this file: it tells you how to reach your server and how to trust its certificates.</p>
<h2>Local address</h2>
<p><a href="https://{e(mdns_address)}">https://{e(mdns_address)}</a> (on the same network as the server)</p>
{ca_block}
</body></html>
"""


def _url_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
