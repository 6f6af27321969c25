"""Blocking work on gevent's native thread pool, with its failure raised in the caller only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import gevent

__all__ = ["in_thread"]

T = TypeVar("T")


def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``func`` on the hub's thread pool and return its result; the hub keeps turning.

    An exception ``func`` raises is raised here. gevent's pool would also print it (with its
    traceback, and whatever values the message quotes, e.g. a client's path) through the hub's
    error handler, so it is caught inside the thread and handed over as a value instead.
    """

    def call() -> tuple[bool, Any]:
        try:
            return True, func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (handed to the caller, raised there)
            return False, exc

    ok, value = gevent.get_hub().threadpool.apply(call)
    if ok:
        result: T = value
        return result
    raise value
