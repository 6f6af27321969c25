"""The sandboxed service runtime and the host's connection to it (DESIGN.md "Processes").

* ``python -m startos.runtime`` (:mod:`startos.runtime.server`) runs inside a service's sandbox,
  imports the package's code (``$STARTOS_CODE/python/startos_service.py``) and answers the host.
* :mod:`startos.runtime.host` is the host side: :class:`~startos.runtime.host.RuntimeConnection`
  and :func:`~startos.runtime.host.start_runtime`.
* :mod:`startos.runtime.errors` holds the typed errors a call can fail with.

The messages are in :mod:`startos.protocol.runtime`. This package's ``__init__`` imports nothing,
so that the runtime (which starts once per service start) does not pay for the host side.
"""
