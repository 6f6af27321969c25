"""Top-level methods: echo, state, git-info."""

from __future__ import annotations

from typing import Any

from startos.actors.facade import FacadeActor
from startos.actors.registry import rpc
from startos.buildinfo import git_hash
from startos.protocol.calls import CallContext
from startos.protocol.rpc import EchoParams, NoParams


@rpc("echo")
def _echo(_facade: FacadeActor, params: EchoParams, _ctx: CallContext) -> str:
    return params.message


@rpc("state")
def _state(facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> dict[str, Any]:
    return facade.api_spec()


@rpc("git-info")
def _git_info(_facade: FacadeActor, _params: NoParams, _ctx: CallContext) -> str | None:
    return git_hash()
