"""Slow Sync: a fake, slow synchronization that reports its progress."""
