"""Command check: exit 0 when the daemon's heartbeat is fresh, else say how stale it is."""

from __future__ import annotations

import sys
import time

from crashy import schedule
from startos.sdk import tmp_path

MAX_AGE = 2.0


def main() -> int:
    try:
        beat = float(tmp_path(schedule.HEARTBEAT).read_text())
    except (FileNotFoundError, ValueError):
        print("no heartbeat yet")
        return 1
    age = time.time() - beat
    if age > MAX_AGE:
        print(f"no heartbeat for {age:.1f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
