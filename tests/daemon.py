"""Run a real ``startd`` in a subprocess for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
POLL = 0.05  # seconds between looks at the log file


class Daemon:
    """A ``startd`` subprocess on a free port; ``url`` is known once it logged ``startd ready``."""

    def __init__(self, data_dir: Path, log: Path, *, bind: str = "127.0.0.1:0") -> None:
        self.data_dir = data_dir
        self.log_path = log
        self.url = ""
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                str(BIN / "startd"),
                "--data-dir",
                str(data_dir),
                "--bind",
                bind,
                "--log-format",
                "json",
                "--no-mdns",
            ],
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def log_entries(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log_path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def wait_ready(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.log_entries():
                if entry.get("msg") == "startd ready":
                    self.url = entry["url"]
                    return self.url
            if self.proc.poll() is not None:
                raise AssertionError(f"startd exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            time.sleep(POLL)  # polling a log file written by another process, with a deadline
        raise AssertionError(f"startd not ready within {timeout} s:\n{self.log_path.read_text()}")

    def wait_for(self, msg: str, *, after: int = 0, timeout: float = 30.0) -> dict[str, Any]:
        """The first log entry with this ``msg`` among those after the first ``after`` entries."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.log_entries()[after:]:
                if entry.get("msg") == msg:
                    return entry
            if self.proc.poll() is not None:
                raise AssertionError(f"startd exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            time.sleep(POLL)  # polling a log file written by another process, with a deadline
        raise AssertionError(f"startd logged no {msg!r} within {timeout} s:\n{self.log_path.read_text()}")

    def wait_diagnostic(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for "startd in diagnostic mode" (the state tree did not load); sets ``url``."""
        entry = self.wait_for("startd in diagnostic mode", timeout=timeout)
        self.url = entry["url"]
        return entry

    def cli_argv(self) -> list[str]:
        """start-cli as root on this machine: it presents the local cookie file."""
        return [
            str(BIN / "start-cli"),
            "-H",
            self.url,
            "--auth-cookie",
            str(self.data_dir / "rpc.authcookie"),
            "--cookie-path",
            str(self.log_path.with_suffix(".cookies.json")),
        ]

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.cli_argv(), *args],
            capture_output=True,
            text=True,
            timeout=60,
            input=input,
        )

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        """Stop startd as an operator would (SIGTERM: its sandboxes are taken down), killing it
        only if it does not end in time."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
