"""The RPC handlers, one module per area; importing this package registers them all."""

from startos.actors.handlers import core, db

__all__ = ["core", "db"]
