"""The RPC handlers, one module per area; importing this package registers them all."""

from startos.actors.handlers import auth, core, db, notifications

__all__ = ["auth", "core", "db", "notifications"]
