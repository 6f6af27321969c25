"""``python -m startos.runtime --fd N --package-id ID``: see :mod:`startos.runtime.server`."""

from startos.runtime.server import main

main()
