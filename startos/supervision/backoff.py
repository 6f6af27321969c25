"""Restart pacing for children that wrap OS processes.

OTP restarts at once and gives up (escalates) after too many restarts; supervisord waits
~1 s and then parks a program in FATAL for good. Neither suits a home server where a daemon
may fail because a disk is not mounted yet. Here: the first restart is immediate, the
following ones wait exponentially longer (with jitter, so many services failing together do
not restart in lockstep) up to a cap, and after ``crash_loop_after`` quick failures in a row the
child is shown as crash-looping and retried after a cooldown — never silently down.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pacing policy. Times are in seconds."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2
    # a child that ran at least this long before failing counts as healthy: the count restarts
    reset_after: float = 60.0
    crash_loop_after: int = 5
    cooldown: float = 300.0

    def delay(self, failures: int, rand: random.Random | None = None) -> float:
        """Seconds to wait before restart number ``failures`` (1-based, consecutive)."""
        if failures <= 1:
            return 0.0
        raw = min(self.cap, self.base * self.factor ** (failures - 2))
        spread = (rand or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.cap, raw * (1.0 + spread)))

    def crash_looping(self, failures: int) -> bool:
        """True when this many consecutive quick failures means the child is crash-looping."""
        return failures >= self.crash_loop_after
