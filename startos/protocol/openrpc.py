"""Generate the OpenRPC document for ``state`` from the method table, with the state tree's schema.

``components.schemas`` holds every method's params and results and the public state tree's
schema (``PublicTree``, what ``db.dump /public`` returns and ``db.subscribe`` patches);
``x-state-tree`` names it.
"""

from __future__ import annotations

from typing import Any

import msgspec

import startos
from startos.errors import StartOSError
from startos.protocol.errors import ErrorKind
from startos.protocol.public_tree import PUBLIC, public_tree_schema
from startos.protocol.rpc import MethodSpec

REF = "#/components/schemas/{name}"


class SchemaClashError(StartOSError):
    """Raised when two different schemas would share one name in ``components.schemas``."""

    kind = ErrorKind.INTERNAL_ERROR


def openrpc_document(methods: dict[str, MethodSpec]) -> dict[str, Any]:
    """``{openrpc, info, methods, components}`` listing every method's params and result."""
    types: list[Any] = []
    slots: list[tuple[MethodSpec, list[tuple[str, bool, int]], int]] = []
    for spec in methods.values():
        params: list[tuple[str, bool, int]] = []
        for field in msgspec.structs.fields(spec.params):
            required = field.default is msgspec.NODEFAULT and field.default_factory is msgspec.NODEFAULT
            params.append((field.encode_name, required, len(types)))
            types.append(field.type)
        slots.append((spec, params, len(types)))
        types.append(spec.result)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    tree_schema, tree_components = public_tree_schema(REF)
    for name, schema in tree_components.items():
        if components.setdefault(name, schema) != schema:
            raise SchemaClashError(f"two schemas are named {name!r}: rename one of the structs")
    out_methods = []
    for spec, params, result_index in slots:
        out_methods.append(
            {
                "name": spec.name,
                "summary": spec.summary,
                "paramStructure": "by-name",
                "params": [
                    {"name": name, "required": required, "schema": schemas[index]} for name, required, index in params
                ],
                "result": {"name": f"{spec.name}.result", "schema": schemas[result_index]},
                "x-authenticated": spec.auth,
                "x-mutating": spec.mutating,
                "x-local-only": spec.local_only,
                "x-before-setup": spec.before_setup,
            }
        )
    return {
        "openrpc": "1.3.2",
        "info": {
            "title": "startos-py",
            "version": startos.__version__,
            "description": "JSON-RPC 2.0 at POST /rpc/v1; live patches at /ws/rpc/{guid} after db.subscribe.",
        },
        "methods": out_methods,
        "components": {"schemas": components},
        "x-state-tree": {"pointer": PUBLIC, "schema": tree_schema},
    }
