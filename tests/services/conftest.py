"""Fixtures for service tests: packed example packages and a set-up tree driven like a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from startos.actors.tree import TreeConfig, start_tree
from startos.protocol.calls import CallContext, RpcCall
from startos.s9pk import generate_signing_key, pack_package
from startos.s9pk.package import find_sources

from ..conftest import TreeHarness

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "packages"
ROOT = CallContext(local_root=True)


class Services(TreeHarness):
    """A tree with services, called through the facade as the local start-cli would."""

    def call(self, method: str, timeout: float = 120.0, **params: Any) -> Any:
        return self.ask("facade", RpcCall(method=method, params=params, context=ROOT), timeout=timeout).result

    def package(self, package_id: str) -> Any:
        return self.call("db.dump", pointer="/public/packageData").value.get(package_id)


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return generate_signing_key()


@pytest.fixture(scope="session")
def packed(tmp_path_factory: pytest.TempPathFactory, signing_key: Any) -> dict[str, Path]:
    """Every example package, packed and signed once per session."""
    out = tmp_path_factory.mktemp("packed")
    return {
        name: pack_package(find_sources(EXAMPLES / name), signing_key, output=out / f"{name}.s9pk")
        for name in ("hello-world", "slow-sync", "crashy", "wallet")
    }


@pytest.fixture(params=["process", "namespace"])
def sandbox_kind(request: pytest.FixtureRequest) -> str:
    kind = str(request.param)
    if kind == "namespace":
        from startos.sandbox import namespace_support

        usable, reason = namespace_support()
        if not usable:
            pytest.skip(f"namespace sandbox unavailable here: {reason}")
    return kind


@pytest.fixture
def services(tmp_path: Path, sandbox_kind: str) -> Iterator[Services]:
    config = TreeConfig(data_dir=tmp_path / "data", port=None, mdns=False, sandbox=sandbox_kind)
    harness = Services(start_tree(config))
    harness.call("setup.execute", serverName="Services Box", password="a long enough password")
    yield harness
    harness.close()
