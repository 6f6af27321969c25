"""Security issue 10: no path from the outside reaches the filesystem unchecked.

A logged-in client once made startd ``rm -rf`` any directory as root: ``db.put`` planted a key
under ``/public/packageData`` (``/tmp/victim``, ``../../victim``), and the recovery at boot
deleted ``<packages root>/<key>``. These tests plant such keys both ways (through the RPC API, and
straight into the store as a buggy internal writer could), boot again, and check that a canary
directory outside the data directory survives, and that the bad keys leave the tree.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonpointer import escape

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.jsonrpc import RpcError
from startos.protocol.store import DbApply, DbDump
from startos.s9pk import generate_signing_key, write_archive
from startos.s9pk.package import build_tree, find_sources

from ..conftest import set_up_server
from ..helpers import installing_entry, wait_until
from ..rpc_client import Http
from .conftest import EXAMPLES, Services

NOT_A_PACKAGE = "is not a readable .s9pk file on the server"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A directory next to (outside) the data directory, with something in it worth keeping."""
    victim = tmp_path / "victim"
    (victim / "deep").mkdir(parents=True)
    (victim / "precious.txt").write_text("keep me")
    (victim / "deep" / "also.txt").write_text("and me")
    return victim


def intact(canary: Path) -> bool:
    try:
        return (canary / "precious.txt").read_text() == "keep me" and (canary / "deep" / "also.txt").exists()
    except OSError:
        return False


def planted_entry() -> dict[str, Any]:
    """The shape of a half-done install: what recovery removes, directory and all."""
    return installing_entry()


def test_planted_package_keys_never_make_boot_delete_outside_the_packages_root(
    tmp_path: Path, canary: Path, packed: dict[str, Path]
) -> None:
    data_dir = tmp_path / "data"
    packages = data_dir / "packages"
    climbing = os.path.relpath(canary, packages)  # "../../victim"
    assert climbing.startswith("..")
    config = TreeConfig(data_dir=data_dir, port=0, mdns=False, sandbox="process", max_body=64 * 1024)
    first = Services(start_tree(config))
    try:
        # A real package too: recovery must still bring it back.
        source = tmp_path / "hello-world.s9pk"
        shutil.copy(packed["hello-world"], source)
        from startos.webui.server import GetAddress

        client = Http(f"http://127.0.0.1:{first.ask('web', GetAddress()).port}")
        try:
            set_up_server(client)
            # 1. Through the public API, as a logged-in client: refused (or, before the db.put
            # fix, accepted); either way the canary must survive the next boot.
            for key in (str(canary), climbing):
                client.call("db.put", {"pointer": f"/public/packageData/{escape(key)}", "value": planted_entry()})
        finally:
            client.close()
        first.call("package.install", path=str(source))
        first.watch("/public/packageData").wait_for(
            lambda v: (v.get("hello-world") or {}).get("stateInfo", {}).get("state") == "installed", timeout=60
        )
        # 2. Straight into the store, as a buggy internal writer could. Every key here lands in
        # tmp_path even with the unchecked code (never "/" or a real system path): this test is
        # run against that code to show that it fails there.
        (packages / "victim-link").symlink_to(canary)  # a valid id whose directory leads outside
        planted = [str(canary), climbing, "victim-link", "vic\x00tim", "..", "x" * 300]
        for key in planted:
            first.ask(
                "store",
                DbApply(
                    patch=[{"op": "add", "path": f"/public/packageData/{escape(key)}", "value": planted_entry()}],
                    owner="services",
                ),
            )
        keys = set(first.ask("store", DbDump(pointer="/public/packageData")).value)
        assert set(planted) <= keys
    finally:
        first.close()
    assert intact(canary)

    # Boot again: the services actor's recovery walks packageData.
    second = Services(start_tree(TreeConfig(data_dir=data_dir, port=None, mdns=False, sandbox="process")))
    try:
        # Done when the bad keys are gone, or as soon as the canary is hurt (the unchecked code).
        watch = second.watch("/public/packageData")
        watch.wait_for(lambda v: not set(v) & set(planted) or not intact(canary), timeout=60)
        assert intact(canary), "boot deleted a directory outside the packages root"
        assert set(watch.value) == {"hello-world"}
        assert watch.value["hello-world"]["stateInfo"]["state"] == "installed"
        assert (packages / "victim-link").is_symlink(), "nothing on disk is touched for a bad key"
        # The real package came back: its service actor runs again.
        wait_until(lambda: second.directory.get("service:hello-world") is not None, timeout=60, what="hello-world")
    finally:
        second.close()
    assert intact(canary)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    harness = Services(start_tree(TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox="process")))
    harness.call("setup.execute", serverName="Hostile", password="a long enough password")
    yield harness
    harness.close()


def install_error(services: Services, path: str) -> RpcError:
    """The error ``package.install`` answers for ``path``; a hang fails the ask's short timeout."""
    with pytest.raises(RpcError) as caught:
        services.call("package.install", timeout=15, path=path)
    return caught.value


def test_installing_a_server_path_that_is_no_package_file_answers_one_message(
    services: Services, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.s9pk"
    os.mkfifo(fifo)
    (tmp_path / "dir.s9pk").mkdir()
    (tmp_path / "notes.s9pk").write_text("not a package at all\n" * 20)
    (tmp_path / "empty.s9pk").write_bytes(b"")
    (tmp_path / "link-to-fifo.s9pk").symlink_to(fifo)
    paths = [
        str(fifo),  # once blocked a worker thread forever
        str(tmp_path / "dir.s9pk"),
        str(tmp_path / "missing.s9pk"),
        str(tmp_path / "notes.s9pk"),
        str(tmp_path / "empty.s9pk"),
        str(tmp_path / "link-to-fifo.s9pk"),
        "/dev/zero",
        "nul\x00byte.s9pk",
    ]
    answers = set()
    for path in paths:
        error = install_error(services, path)
        assert NOT_A_PACKAGE in error.message, (path, error.message)
        shown_path, rest = error.message.split(NOT_A_PACKAGE)
        assert shown_path.startswith(repr(path)[:40])  # only the path the client gave is echoed
        answers.add((error.kind, error.debug, rest))
    assert len(answers) == 1, answers  # nothing tells a missing file from an unreadable or foreign one
    assert services.call("package.list") == []


def test_a_link_to_a_package_file_installs(services: Services, packed: dict[str, Path], tmp_path: Path) -> None:
    link = tmp_path / "latest.s9pk"
    link.symlink_to(packed["hello-world"])
    started = services.call("package.install", path=str(link))
    assert started.id == "hello-world"
    services.watch("/public/packageData").wait_for(
        lambda v: (v.get("hello-world") or {}).get("stateInfo", {}).get("state") == "installed", timeout=60
    )


def forged_package(tmp_path: Path, change: dict[str, Any]) -> Path:
    """hello-world with its manifest changed after validation (as a hostile packer could)."""
    tree, manifest = build_tree(find_sources(EXAMPLES / "hello-world"))
    tree["manifest.json"] = json.dumps({**manifest.to_dict(), **change}).encode()
    out = tmp_path / "forged.s9pk"
    write_archive(tree, out, generate_signing_key())
    return out


def test_an_over_long_package_id_is_refused_with_a_clear_message(services: Services, tmp_path: Path) -> None:
    error = install_error(services, str(forged_package(tmp_path, {"id": "a" * 300})))
    assert "manifest: id: must be at most 63 characters long, got 300" in error.message
    assert services.call("db.dump", pointer="/public/packageData").value == {}
    assert not any((tmp_path / "data" / "packages").iterdir())


def test_a_bad_volume_id_never_becomes_a_directory(services: Services, tmp_path: Path) -> None:
    error = install_error(services, str(forged_package(tmp_path, {"volumes": ["main", "../../escape"]})))
    assert "volumes" in error.message and "lowercase letters" in error.message
    assert not (tmp_path / "escape").exists() and not (tmp_path / "data" / "escape").exists()
