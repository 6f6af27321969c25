"""Daemon ``web``: answers ``/`` with the greeting and the visit count, ``/health`` with 200."""

from __future__ import annotations

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hello_world import settings
from startos.sdk import volume_path


class Counter:
    """The visit count, kept in the volume so it survives restarts."""

    def __init__(self, volume: Path) -> None:
        self.path = volume / settings.VISITS
        self.lock = threading.Lock()

    def visit(self) -> int:
        with self.lock:
            try:
                count = json.loads(self.path.read_text())["visits"] + 1
            except FileNotFoundError:
                count = 1
            settings.write_atomically(self.path, json.dumps({"visits": count}))
            return int(count)


def make_handler(greeting: str, counter: Counter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(200, "ok\n")
            elif self.path == "/":
                self._answer(200, f"{greeting} You are visitor number {counter.visit()}.\n")
            else:
                self._answer(404, "not found\n")

        def _answer(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"{self.address_string()} {format % args}", flush=True)

    return Handler


def main() -> None:
    volume = volume_path("main")
    config = settings.load(volume)
    server = ThreadingHTTPServer(("0.0.0.0", config["port"]), make_handler(config["greeting"], Counter(volume)))
    # SIGTERM (how the server stops daemons) ends serve_forever cleanly.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on port {config['port']}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
