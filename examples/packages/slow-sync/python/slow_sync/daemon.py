"""Daemon ``sync``: fetch the blocks one by one, reporting progress; then idle until stopped."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from slow_sync import state
from startos.sdk import report_progress, volume_path


def sync(volume: Path, stop: threading.Event, report: Callable[..., object] = report_progress) -> int:
    """Fetch the missing blocks (resuming after the last saved one); the number done."""
    config = state.load_config(volume)
    total, interval = int(config["blocks"]), float(config["interval"])
    done = state.load_progress(volume)
    (volume / "blocks").mkdir(exist_ok=True)
    report(done, total, f"Synced {done} of {total} blocks")
    while done < total:
        if stop.wait(interval):
            break
        done += 1
        (volume / "blocks" / f"{done:06d}").write_text(f"block {done}\n")
        state.save_progress(volume, done)
        report(done, total, f"Synced {done} of {total} blocks")
    return done


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    volume = volume_path("main")
    done = sync(volume, stop)
    print(f"synced {done} blocks", flush=True)
    stop.wait()  # a daemon keeps running: exiting would count as a crash


if __name__ == "__main__":
    main()
