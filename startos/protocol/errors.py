"""Error kinds on the wire: JSON-RPC's standard codes and StartOS's error-kind numbers.

StartOS answers an application error with ``code`` = its ``ErrorKind`` number (REFERENCE.md
§4): the dashboard logs out on 34 (Authorization) and shows "rate limited" on 37. Keeping the
same numbers lets StartOS-shaped clients read our errors unchanged.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorKind(IntEnum):
    # JSON-RPC 2.0 standard codes
    PARSE_ERROR = -32700
    INVALID_REQUEST_JSONRPC = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # StartOS ErrorKind numbers (start-os core/models, 0.4)
    UNKNOWN = 1
    FILESYSTEM = 2
    NOT_FOUND = 6
    INCORRECT_PASSWORD = 7
    VERSION_INCOMPATIBLE = 8
    NETWORK = 9
    REGISTRY = 10
    SERIALIZATION = 11
    DESERIALIZATION = 12
    PARSE_VERSION = 14
    DEPENDENCY = 17
    PARSE_S9PK = 18
    PACK = 23
    VALIDATE_S9PK = 24
    DATABASE = 29
    INVALID_ID = 30
    INVALID_SIGNATURE = 31
    BACKUP = 32
    RESTORE = 33
    AUTHORIZATION = 34
    ACTION = 36
    RATE_LIMITED = 37
    INVALID_REQUEST = 38
    MIGRATION_FAILED = 39
    UNINITIALIZED = 40
    DIAGNOSTIC_MODE = 51
    DUPLICATE = 53
    INCOHERENT = 55
    TIMEOUT = 71
    CANCELLED = 73
    INSTALL_FAILED = 76
    UPDATE_FAILED = 77


# Messages StartOS pairs with each kind (its ``ErrorKind::as_str``), used as the JSON-RPC
# ``message``; the specific, human sentence goes in ``data.details``.
KIND_TITLES: dict[int, str] = {
    ErrorKind.PARSE_ERROR: "Parse error",
    ErrorKind.INVALID_REQUEST_JSONRPC: "Invalid Request",
    ErrorKind.METHOD_NOT_FOUND: "Method not found",
    ErrorKind.INVALID_PARAMS: "Invalid params",
    ErrorKind.INTERNAL_ERROR: "Internal error",
    ErrorKind.UNKNOWN: "Unknown Error",
    ErrorKind.FILESYSTEM: "Filesystem I/O Error",
    ErrorKind.NOT_FOUND: "Not Found",
    ErrorKind.INCORRECT_PASSWORD: "Incorrect Password",
    ErrorKind.VERSION_INCOMPATIBLE: "Version Incompatible",
    ErrorKind.NETWORK: "Network Error",
    ErrorKind.REGISTRY: "Registry Error",
    ErrorKind.SERIALIZATION: "Serialization Error",
    ErrorKind.DESERIALIZATION: "Deserialization Error",
    ErrorKind.PARSE_VERSION: "Version Parsing Error",
    ErrorKind.DEPENDENCY: "Dependency Error",
    ErrorKind.PARSE_S9PK: "S9PK Parsing Error",
    ErrorKind.PACK: "Pack Error",
    ErrorKind.VALIDATE_S9PK: "S9PK Validation Error",
    ErrorKind.DATABASE: "Database Error",
    ErrorKind.INVALID_ID: "Invalid ID",
    ErrorKind.INVALID_SIGNATURE: "Invalid Signature",
    ErrorKind.BACKUP: "Backup Error",
    ErrorKind.RESTORE: "Restore Error",
    ErrorKind.AUTHORIZATION: "Unauthorized",
    ErrorKind.ACTION: "Action Failed",
    ErrorKind.RATE_LIMITED: "Rate Limited",
    ErrorKind.INVALID_REQUEST: "Invalid Request",
    ErrorKind.MIGRATION_FAILED: "Migration Failed",
    ErrorKind.UNINITIALIZED: "Uninitialized",
    ErrorKind.DIAGNOSTIC_MODE: "Diagnostic Mode",
    ErrorKind.DUPLICATE: "Duplication Error",
    ErrorKind.INCOHERENT: "Incoherent",
    ErrorKind.TIMEOUT: "Timeout Error",
    ErrorKind.CANCELLED: "Cancelled",
    ErrorKind.INSTALL_FAILED: "Install Failed",
    ErrorKind.UPDATE_FAILED: "Update Failed",
}


def kind_title(code: int) -> str:
    return KIND_TITLES.get(code, "Unknown Error")
