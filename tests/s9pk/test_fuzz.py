"""Hypothesis fuzzing of the reader over mutated real archives.

Whatever the mutation, reading, verifying and unpacking either give back exactly the original
contents or raise an :class:`S9pkError` with a one-line message; nothing else escapes, nothing
hangs, and unpacking writes only inside its destination.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from startos.s9pk.archive import ArchiveReader
from startos.s9pk.archive_writer import write_archive
from startos.s9pk.errors import S9pkError
from startos.s9pk.signing import sign_commitment
from startos.s9pk.toc import HEADER_SIZE, parse_toc, sighash

from .conftest import TEST_KEY, flatten, read_everything, sample_tree

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # deterministic test runs; the corpus is the same every time
)


@functools.cache
def original() -> bytes:
    """The archive under attack (a plain function, not a fixture, so failures print short)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.s9pk"
        write_archive(sample_tree(), path, TEST_KEY)
        return path.read_bytes()


def mutation(size: int) -> st.SearchStrategy[tuple[str, int, int, bytes]]:
    index = st.integers(min_value=0, max_value=size - 1)
    return st.one_of(
        st.tuples(st.just("flip"), index, st.integers(1, 255), st.just(b"")),
        st.tuples(st.just("truncate"), index, st.just(0), st.just(b"")),
        st.tuples(st.just("insert"), index, st.just(0), st.binary(min_size=1, max_size=9)),
        st.tuples(st.just("delete"), index, st.integers(1, 64), st.just(b"")),
        st.tuples(st.just("append"), st.just(0), st.just(0), st.binary(min_size=1, max_size=9)),
        # Biased towards the header and the root TOC, where the parser is.
        st.tuples(st.just("flip"), st.integers(0, min(size - 1, 700)), st.integers(1, 255), st.just(b"")),
    )


def apply(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for op, i, n, payload in ops:
        i = min(i, max(len(out) - 1, 0))
        if op == "flip" and out:
            out[i] ^= n
        elif op == "truncate":
            del out[i:]
        elif op == "insert":
            out[i:i] = payload
        elif op == "delete":
            del out[i : i + n]
        elif op == "append":
            out += payload
    return bytes(out)


def resign(data: bytes) -> bytes:
    """Give a mutated archive a valid signature, recomputing the root hash if its TOC parses,
    so that fuzzing reaches the TOC, position and content checks behind the signature."""
    if len(data) < HEADER_SIZE:
        return data
    root_pos = int.from_bytes(data[139:147], "big")
    root_size = int.from_bytes(data[147:155], "big")
    digest = data[99:131]
    if root_pos == HEADER_SIZE and root_size <= 1 << 20:
        try:
            digest = sighash(parse_toc(data[root_pos : root_pos + root_size]))
        except S9pkError:
            pass
    maxsize = int.from_bytes(data[131:139], "big")
    signature = sign_commitment(TEST_KEY, digest, maxsize)
    return data[:3] + TEST_KEY.public_key + signature + digest + data[131:]


def check(data: bytes, workdir: Path, expected: dict[str, bytes] | None) -> None:
    """Read, verify and unpack ``data``. With ``expected`` None (an honestly re-signed
    archive) any contents are legitimate, but reading and unpacking must agree."""
    path = workdir / "fuzz.s9pk"
    path.write_bytes(data)
    got: dict[str, bytes] | None = None
    try:
        got = read_everything(path)
    except S9pkError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert expected is None or got == expected
    dest = workdir / "out"
    before = set(os.listdir(workdir))
    try:
        with ArchiveReader(path) as reader:
            reader.unpack(dest)
    except S9pkError as exc:
        assert "\n" not in str(exc)
        assert not dest.exists()
    else:
        unpacked = {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
        assert got is None or unpacked == got
        shutil.rmtree(dest)
    assert set(os.listdir(workdir)) == before


@FUZZ
@given(data=st.data())
def test_mutated_archives(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    ops = data.draw(st.lists(mutation(len(original())), min_size=1, max_size=4))
    workdir = tmp_path_factory.mktemp("fuzz")
    check(apply(original(), ops), workdir, flatten(sample_tree()))
    shutil.rmtree(workdir)


@FUZZ
@given(data=st.data())
def test_mutated_and_resigned_archives(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The signer is honest about a corrupted file: every later check must still hold."""
    root_end = HEADER_SIZE + int.from_bytes(original()[147:155], "big")
    region = st.integers(min_value=HEADER_SIZE - 16, max_value=root_end + 200)
    ops = data.draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("flip"), region, st.integers(1, 255), st.just(b"")),
                st.tuples(st.just("insert"), region, st.just(0), st.binary(min_size=1, max_size=5)),
                st.tuples(st.just("delete"), region, st.integers(1, 8), st.just(b"")),
            ),
            min_size=1,
            max_size=3,
        )
    )
    workdir = tmp_path_factory.mktemp("fuzz")
    check(resign(apply(original(), ops)), workdir, None)
    shutil.rmtree(workdir)
