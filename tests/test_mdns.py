"""mDNS: the MdnsActor advertises ``<hostname>.local`` on this machine's real interfaces.

Resolution is checked the way another machine would do it, from a separate, unpatched Python
process using zeroconf's own query (REFERENCE.md §10: synchronous look-ups fail inside a
gevent-patched process, and ``getaddrinfo`` knows nothing of ``.local`` without nss-mdns).
Names are random so that parallel test runs on one network do not answer for each other.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from startos.actors.mdns import InvalidHostname, scan_network
from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.mdns import Advertise, GetMdnsStatus, MdnsStatus, StopAdvertising
from startos.protocol.store import DbPut, DbRevision

from .conftest import TreeHarness

RESOLVE = """
import sys
from zeroconf import AddressResolver, Zeroconf
zc = Zeroconf()
try:
    resolver = AddressResolver(sys.argv[1])
    resolver.request(zc, int(sys.argv[2]))
    print(" ".join(resolver.parsed_scoped_addresses()))
finally:
    zc.close()
"""


def resolve(hostname: str, timeout_ms: int = 3000) -> set[str]:
    """Addresses another process gets for ``<hostname>.local`` (empty if nobody answers)."""
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE, f"{hostname}.local.", str(timeout_ms)],
        capture_output=True,
        text=True,
        timeout=timeout_ms / 1000 + 30,
        check=True,
    )
    return set(done.stdout.split())


def fresh_name() -> str:
    return f"startos-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def tree(data_dir: Path) -> Iterator[TreeHarness]:
    """The in-process tree with mDNS on (the shared fixture leaves it off: it multicasts on real interfaces)."""
    harness = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None, mdns=True)))
    yield harness
    harness.close()


def advertised(tree: TreeHarness, hostname: str, timeout: float = 15.0) -> dict[str, Any]:
    watch = tree.watch("/public/serverInfo")
    value = watch.wait_for(
        lambda v: (
            (v.get("network") or {}).get("mdns", {}).get("hostname") == hostname and v["network"]["mdns"]["advertised"]
        ),
        timeout=timeout,
    )
    status: dict[str, Any] = value["network"]["mdns"]
    return status


def test_nothing_is_advertised_without_a_hostname(tree: TreeHarness) -> None:
    assert tree.ask("mdns", GetMdnsStatus()) == MdnsStatus(hostname=None, advertised=False)
    watch = tree.watch("/public/serverInfo/network")
    assert watch.value["mdns"] == {"hostname": None, "advertised": False, "addresses": [], "error": None}


def test_the_name_resolves_from_another_process(tree: TreeHarness) -> None:
    name = fresh_name()
    started = time.monotonic()
    assert tree.ask("mdns", Advertise(hostname=name)) is None
    # Probing takes ~1.7 s in the background; the actor answers meanwhile.
    status = tree.ask("mdns", GetMdnsStatus(), timeout=1)
    assert time.monotonic() - started < 0.5 and status.advertised is False
    public = advertised(tree, name)
    expected = set(public["addresses"])
    assert expected and not any(a.startswith("127.") or a == "::1" for a in expected)
    assert resolve(name) == expected
    assert tree.ask("mdns", GetMdnsStatus()) == MdnsStatus(
        hostname=name, advertised=True, addresses=public["addresses"], error=None
    )


def test_a_rename_advertises_the_new_name_and_withdraws_the_old(tree: TreeHarness) -> None:
    old, new = fresh_name(), fresh_name()
    tree.tell("mdns", Advertise(hostname=old))
    addresses = set(advertised(tree, old)["addresses"])
    assert resolve(old) == addresses
    tree.tell("mdns", Advertise(hostname=new))
    advertised(tree, new)
    assert resolve(new) == addresses
    assert resolve(old, timeout_ms=1500) == set()


def test_quick_renames_settle_on_the_last_one(tree: TreeHarness) -> None:
    names = [fresh_name() for _ in range(3)]
    for name in names:
        tree.tell("mdns", Advertise(hostname=name))
    advertised(tree, names[-1], timeout=20)
    assert resolve(names[-1])
    assert resolve(names[0], timeout_ms=1000) == set()


def test_stop_advertising_withdraws_the_name(tree: TreeHarness) -> None:
    name = fresh_name()
    tree.tell("mdns", Advertise(hostname=name))
    advertised(tree, name)
    tree.ask("mdns", StopAdvertising())
    tree.watch("/public/serverInfo/network").wait_for(lambda v: v["mdns"]["hostname"] is None, timeout=10)
    assert resolve(name, timeout_ms=1500) == set()


@pytest.mark.parametrize("bad", ["", "My-Server", "under_score", "-lead", "trail-", "a" * 64, "dot.ted", 7])
def test_invalid_hostnames_are_refused_and_change_nothing(tree: TreeHarness, bad: Any) -> None:
    before = tree.ask("store", DbRevision())
    with pytest.raises(InvalidHostname, match="lowercase letters, digits and hyphens"):
        tree.ask("mdns", Advertise(hostname=bad))
    tree.tell("mdns", Advertise(hostname=bad))  # told: logged and ignored, the actor lives on
    assert tree.ask("mdns", GetMdnsStatus()) == MdnsStatus(hostname=None, advertised=False)
    assert tree.ask("store", DbRevision()) == before


def _zeroconf_leftovers() -> tuple[list[str], list[Any]]:
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    sockets = [c for c in psutil.Process().net_connections(kind="udp") if c.laddr and c.laddr.port == 5353]
    return threads, sockets


def test_the_stored_hostname_is_advertised_at_start_and_withdrawn_at_stop(data_dir: Path, tree: TreeHarness) -> None:
    name = fresh_name()
    tree.ask("store", DbPut(pointer="/public/serverInfo/hostname", value=name, owner="auth"))
    assert tree.tree.stop(timeout=10)
    again = TreeHarness(start_tree(TreeConfig(data_dir=data_dir, port=None)))
    try:
        addresses = set(advertised(again, name)["addresses"])
        assert resolve(name) == addresses
        assert _zeroconf_leftovers()[1], "expected zeroconf's sockets while advertising"
    finally:
        again.close()
    assert _zeroconf_leftovers() == ([], [])  # no loop thread, no socket left behind
    assert resolve(name, timeout_ms=1500) == set()  # goodbye packets were sent


def test_stopping_while_probing_is_quick_and_clean(data_dir: Path, tree: TreeHarness) -> None:
    tree.tell("mdns", Advertise(hostname=fresh_name()))
    tree.ask("mdns", GetMdnsStatus())
    started = time.monotonic()
    assert tree.tree.stop(timeout=10)
    assert time.monotonic() - started < 0.9  # the registration is cancelled, not waited for
    assert _zeroconf_leftovers() == ([], [])


def test_scan_network_leaves_loopback_out_unless_alone() -> None:
    addresses, bind = scan_network()
    if any(not a.startswith("127.") and a != "::1" for a in addresses):
        assert not any(a.startswith("127.") or a == "::1" for a in addresses)
        assert bind
    assert scan_network(only=["127.0.0.1"]) == (["127.0.0.1"], [])
    assert scan_network(only=["203.0.113.99"]) == ([], [])
