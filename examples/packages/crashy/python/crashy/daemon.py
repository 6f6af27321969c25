"""Daemon ``crashy``: beat, and exit with an error when this start is scheduled to crash."""

from __future__ import annotations

import signal
import sys
import threading
import time

from crashy import schedule
from startos.sdk import tmp_path, volume_path

BEAT_EVERY = 0.2


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    volume = volume_path("main")
    config = schedule.load_config(volume)
    start = schedule.count_start(volume)
    crash = schedule.crashes_on(start, int(config["crash_every"]))
    deadline = time.monotonic() + float(config["exit_after"])
    print(f"start {start}: {'crashing' if crash else 'staying up'}", flush=True)
    heartbeat = tmp_path(schedule.HEARTBEAT)
    while not stop.is_set():
        heartbeat.write_text(str(time.time()))
        if crash and time.monotonic() >= deadline:
            print(f"crashing on purpose with status {config['exit_code']}", file=sys.stderr, flush=True)
            return int(config["exit_code"])
        stop.wait(BEAT_EVERY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
