"""The RPC handlers, one module per area; importing this package registers them all."""

from startos.actors.handlers import auth, core, db, notifications, packages

__all__ = ["auth", "core", "db", "notifications", "packages"]
