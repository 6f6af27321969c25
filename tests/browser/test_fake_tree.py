"""The browser tests' hand-made trees are held to the server's schema (fake_tree.py).

No browser: these check the check. A fake entry is a tree the server could write, and the
keys the dashboard once read but the server never wrote (``statusInfo.blocked.packageId``)
are refused with their pointer.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from startos.actors.store import initial_document

from .fake_tree import check_public, entry, schema_validator

pytestmark = pytest.mark.skipif(schema_validator() is None, reason="no startos.protocol.public_tree yet")


@pytest.fixture(autouse=True)
def no_script_errors() -> None:
    """No page here: overrides the browser tests' check of the dashboard's scripts."""


def public_with(**entries: dict[str, Any]) -> dict[str, Any]:
    public = copy.deepcopy(initial_document()["public"])
    public["packageData"] = entries
    return public


def test_a_fake_entry_is_a_tree_the_server_could_write() -> None:
    check_public(public_with(**{"fake-app": entry("Fake App", statusInfo={"summary": "waiting"})}))


def test_a_key_the_server_never_writes_is_refused_with_its_pointer() -> None:
    from startos.protocol.public_tree import SchemaError

    invented = entry("Fake App", statusInfo={"blocked": {"reason": "Fake DB is not running", "packageId": "fake-db"}})
    with pytest.raises(SchemaError) as caught:
        check_public(public_with(**{"fake-app": invented}))
    assert caught.value.pointer.startswith("/public/packageData/fake-app/statusInfo/blocked")


def test_a_status_word_the_server_never_writes_is_refused() -> None:
    from startos.protocol.public_tree import SchemaError

    with pytest.raises(SchemaError) as caught:
        check_public(public_with(**{"fake-app": entry("Fake App", statusInfo={"summary": "sleeping"})}))
    assert caught.value.pointer == "/public/packageData/fake-app/statusInfo/summary"
