"""Where the facade finds the implementation of each declared RPC method.

Each area of the API keeps its handlers in a module of ``startos.actors.handlers`` and marks
them with ``@rpc("method.name")``; the method itself (params, result, auth) is declared in
``startos.protocol`` with ``method(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from startos.protocol.rpc import METHODS

if TYPE_CHECKING:
    from startos.actors.facade import FacadeActor
    from startos.protocol.calls import CallContext

Handler = Callable[["FacadeActor", Any, "CallContext"], Any]
HANDLERS: dict[str, Handler] = {}


def rpc(name: str) -> Callable[[Handler], Handler]:
    """Register the facade's implementation of the method declared as ``name``."""
    if name not in METHODS:
        raise ValueError(f"{name!r} is not declared in startos.protocol")
    if name in HANDLERS:
        raise ValueError(f"{name!r} has two handlers")

    def register(func: Handler) -> Handler:
        HANDLERS[name] = func
        return func

    return register
