"""Pack and verify an s9pk of mixed large and small files; compare with the b3sum tool.

    python benchmarks/bench_s9pk.py [--size-gib 1]

Prints a markdown table (the shared ``_common.Table`` shape: startos, baseline, ratio, target)
for a package of a quarter of the size and of the full size, so that flat memory shows: verify
MB/s beside b3sum MB/s over the same files in the same run, pack MB/s beside the disk's write
floor (writing and fsyncing as many bytes), and the peak RSS of the pack and verify processes.
Every phase reads a warm page cache (a b3sum pass comes first), and pack and verify each run
in a fresh process so that their peak RSS is their own. Like the other benchmark modules it
offers ``run(quick) -> list[Table]`` and ``--quick``/``--json``.
Skips with a message when the b3sum tool is missing (Debian: apt-get install b3sum).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, Table, filesystem_of, log, machine_summary

MANIFEST = {
    "id": "bench",
    "title": "Bench",
    "version": "1.0.0:0",
    "canMigrateTo": "!",
    "canMigrateFrom": "*",
    "description": {"short": "Benchmark package.", "long": "Mixed large and small files."},
    "releaseNotes": "n/a",
    "license": "MIT",
    "packageRepo": "https://example.com/bench",
    "upstreamRepo": "https://example.com/bench",
    "osVersion": "0.1.0",
    "images": {},
    "volumes": ["main"],
}


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        while size > 0:
            chunk = min(size, 8 << 20)
            fh.write(os.urandom(chunk))
            size -= chunk


def make_source(folder: Path, total: int, rng: random.Random) -> list[Path]:
    """A package source: 70% in four large assets, 30% in small files of 1 KiB to 1 MiB."""
    (folder / "python" / "bench").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(MANIFEST))
    (folder / "icon.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "LICENSE.md").write_text("MIT\n")
    (folder / "instructions.md").write_text("# Bench\n")
    (folder / "python" / "bench" / "__init__.py").write_text("X = 1\n")
    files: list[Path] = []
    large = (total * 7 // 10) // 4
    (folder / "assets" / "large").mkdir(parents=True)
    for i in range(4):
        path = folder / "assets" / "large" / f"blob-{i}.bin"
        _write_random(path, large)
        files.append(path)
    remaining = total - 4 * large
    index = 0
    while remaining > 0:
        size = min(remaining, int(rng.uniform(1 << 10, 1 << 20)))
        directory = folder / "assets" / "small" / f"d{index // 64:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"f{index:05d}.bin"
        _write_random(path, size)
        files.append(path)
        remaining -= size
        index += 1
    return files


def run_b3sum(files: list[Path]) -> float:
    """Seconds for the b3sum tool to hash ``files`` (in batches to keep argv short)."""
    start = time.perf_counter()
    for i in range(0, len(files), 500):
        subprocess.run(["b3sum", *map(str, files[i : i + 500])], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def write_floor(path: Path, size: int) -> float:
    """Seconds to write and fsync ``size`` bytes (the disk bound of a pack)."""
    buf = memoryview(bytearray(os.urandom(8 << 20)))
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = size
        while left > 0:
            left -= os.write(fd, buf[: min(left, len(buf))])
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - start
    path.unlink()
    return elapsed


def phase(args: argparse.Namespace) -> None:
    """Child process: run one phase, print seconds and this process's peak RSS as JSON."""
    from startos.s9pk.archive import ArchiveReader
    from startos.s9pk.package import find_sources, pack_package
    from startos.s9pk.signing import SigningKey

    start = time.perf_counter()
    if args.phase == "pack":
        pack_package(find_sources(args.src), SigningKey(bytes.fromhex(args.key)), args.out)
    else:
        with ArchiveReader(args.out) as reader:
            reader.verify()
    elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": elapsed, "rss": rss}))


def child(phase_name: str, src: Path, out: Path, key: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--phase", phase_name, "--src", str(src), "--out", str(out), "--key", key],
        check=True,
        capture_output=True,
        text=True,
    )
    data: dict[str, float] = json.loads(result.stdout)
    return data


def bench_one(size: int, workdir: Path, rng: random.Random) -> dict[str, float]:
    src = workdir / "src"
    log(f"writing a {size / (1 << 30):.2f} GiB package source")
    files = make_source(src, size, rng)
    payload = sum(p.stat().st_size for p in files)
    run_b3sum(files)  # warm the page cache for everyone
    b3 = run_b3sum(files)
    out = workdir / "bench.s9pk"
    key = os.urandom(32).hex()
    log("pack")
    packed = child("pack", src, out, key)
    archive = out.stat().st_size
    floor = write_floor(workdir / "floor.bin", archive)
    log("verify")
    verified = child("verify", src, out, key)
    shutil.rmtree(src)
    out.unlink()
    return {
        "size": archive,
        "files": len(files) + 5,
        "pack": archive / packed["seconds"] / 1e6,
        "floor": archive / floor / 1e6,
        "verify": archive / verified["seconds"] / 1e6,
        "b3sum": payload / b3 / 1e6,
        "pack_rss": packed["rss"] / (1 << 20),
        "verify_rss": verified["rss"] / (1 << 20),
    }


def run(quick: bool, size_gib: float = 1.0) -> list[Table]:
    """Measure a package of ``size_gib`` and one of a quarter of it (``quick``: 0.25 GiB)."""
    if shutil.which("b3sum") is None:
        return []
    total = int((0.25 if quick else size_gib) * (1 << 30))
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="bench-s9pk-") as tmp:
        small = bench_one(total // 4, Path(tmp), rng)
        big = bench_one(total, Path(tmp), rng)
        fs = filesystem_of(Path(tmp))
    gib = f"{big['size'] / (1 << 30):.2f} GiB"
    table = Table("s9pk", f"pack and verify a {gib} package against the b3sum tool")
    for label, row in ((f"{small['size'] / (1 << 30):.2f} GiB", small), (gib, big)):
        verify_ok = row["verify"] >= 0.5 * row["b3sum"] and row["verify"] >= 1000
        table.add(
            Row(
                f"verify {label} (MB/s)",
                row["verify"],
                "b3sum, same files (MB/s)",
                row["b3sum"],
                ">= 0.5x b3sum and >= 1,000 MB/s",
                verify_ok,
            )
        )
        table.add(
            Row(
                f"pack {label} (MB/s)",
                row["pack"],
                "write+fsync same size (MB/s)",
                row["floor"],
                "bounded by disk write",
                row["pack"] >= 0.5 * row["floor"],
            )
        )
    table.add(
        Row(
            "pack peak RSS (MiB)",
            big["pack_rss"],
            f"at {int(small['size']) >> 20} MiB",
            small["pack_rss"],
            "flat as the package grows",
            big["pack_rss"] <= 1.25 * small["pack_rss"],
        )
    )
    table.add(
        Row(
            "verify peak RSS (MiB)",
            big["verify_rss"],
            f"at {int(small['size']) >> 20} MiB",
            small["verify_rss"],
            "flat as the package grows",
            big["verify_rss"] <= 1.25 * small["verify_rss"],
        )
    )
    table.notes += [
        f"{int(big['files'])} files: 70% in four large files, the rest 1 KiB to 1 MiB; "
        f"{machine_summary()}; temp files on {fs}.",
        "Warm page cache for every column (a b3sum pass runs first); pack and verify each run "
        "in a fresh process, so peak RSS is theirs alone (Python and imports included).",
        "MB = 10^6 bytes; pack and verify MB/s count archive bytes, b3sum counts file bytes.",
    ]
    return [table]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0, help="package size (GiB)")
    parser.add_argument("--quick", action="store_true", help="a 0.25 GiB smoke run")
    parser.add_argument("--json", type=Path, help="also write the tables to this JSON file")
    parser.add_argument("--phase", choices=["pack", "verify"], help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase(args)
        return 0
    if shutil.which("b3sum") is None:
        print("skipped: the b3sum tool is not installed (Debian/Ubuntu: apt-get install b3sum)")
        return 0
    tables = run(args.quick, args.size_gib)
    for table in tables:
        print(table.to_markdown())
    if args.json is not None:
        args.json.write_text(json.dumps([t.to_dict() for t in tables], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
