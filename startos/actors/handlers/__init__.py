"""The RPC handlers, one module per area; importing this package registers them all."""

from startos.actors.handlers import actions, auth, core, db, notifications, packages

__all__ = ["actions", "auth", "core", "db", "notifications", "packages"]
