"""Daemon ``web``: a page showing the wallet's (pretend) balance, ``/health`` answering 200."""

from __future__ import annotations

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from startos.sdk import volume_path

PORT = 8090


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, "ok\n")
            return
        balance = json.loads(volume_path("main", "wallet.json").read_text())["balance"]
        self._answer(200, f"Your balance: {balance} sats\n")

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on port {PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
