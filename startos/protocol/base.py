"""The base of every message: an immutable, strict record."""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An actor message: immutable, keyword-only, and unknown fields rejected when decoded."""


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """An RPC method's params (camelCase on the wire, like StartOS)."""


class Result(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An RPC method's structured result."""
