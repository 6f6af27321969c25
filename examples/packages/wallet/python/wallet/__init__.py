"""Wallet: an example service that depends on Slow Sync."""
