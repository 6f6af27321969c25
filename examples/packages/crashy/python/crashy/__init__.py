"""Crashy: a daemon that exits on a schedule."""
