"""startos-py: a personal-server runtime built as a supervision tree of actors."""

__version__ = "0.1.0"
