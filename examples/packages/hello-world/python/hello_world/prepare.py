"""Oneshot ``prepare``: make sure the volume's files exist and the settings are valid."""

from __future__ import annotations

import sys

from hello_world import settings
from startos.sdk import volume_path


def main() -> int:
    volume = volume_path("main")
    settings.ensure_defaults(volume)
    try:
        settings.load(volume)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    print("settings are valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
