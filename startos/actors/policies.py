"""Every restart policy of the tree, by name: how fast things come back after they fail.

One place to read and tune them (DESIGN.md "Supervision tree": exponential backoff with jitter
and a cap, a visible crash-looping state, automatic retry after a cooldown). The supervisors and
actors that restart things import their policy from here; tests pass faster ones of their own.
"""

from __future__ import annotations

from startos.supervision import Backoff

__all__ = ["CHECK_BACKOFF", "DAEMON_BACKOFF", "SERVICE_BACKOFF", "WATCHER_BACKOFF"]

DAEMON_BACKOFF = Backoff(
    base=0.5, factor=2.0, cap=30.0, jitter=0.2, reset_after=60.0, crash_loop_after=5, cooldown=300.0
)
"""A service's daemon process (DaemonActor): crash-looping after 5 quick exits, retried after 5 minutes."""

SERVICE_BACKOFF = Backoff(
    base=1.0, factor=2.0, cap=30.0, jitter=0.2, reset_after=60.0, crash_loop_after=5, cooldown=300.0
)
"""A service's supervisor (ServiceSupervisor[id] under services-sup): slower to start again than a daemon."""

CHECK_BACKOFF = Backoff(
    base=0.5, factor=2.0, cap=30.0, jitter=0.2, reset_after=60.0, crash_loop_after=20, cooldown=60.0
)
"""A health check's actor (HealthCheckActor): a failing check is normal, a crashing actor is a bug."""

WATCHER_BACKOFF = Backoff(base=0.5, factor=2.0, cap=10.0, jitter=0.2, reset_after=60.0)
"""The dependency watcher (DependencyWatcherActor): back soon, it only relays store changes."""
