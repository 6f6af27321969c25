"""Shared plumbing of the benchmarks: timing, percentiles, result tables and the CLI of a module.

Every ``bench_*.py`` module exposes ``run(quick) -> list[Table]`` and ends with
``bench_main(run, __doc__)``; ``run.py`` starts each module in its own process with
``--json PATH`` and prints the tables it writes there. A ``Table`` is one markdown table: every
row puts a startos measurement next to a baseline measured in the same run, with the ratio of
the two and, where the issue sets one, the target and whether it was met.

This module does not import gevent: ``run.py`` (the orchestrator) stays unpatched, and each
benchmark module patches itself first thing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "RESULTS_DIR",
    "Row",
    "Table",
    "bench_main",
    "filesystem_of",
    "fmt_number",
    "log",
    "machine_summary",
    "median",
    "percentile",
    "time_calls",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    """Progress goes to stderr, so stdout carries nothing but the result tables."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def median(values: Sequence[float]) -> float:
    """The median, as a float."""
    return float(statistics.median(values))


def time_calls(func: Callable[[], object], count: int) -> list[int]:
    """Call ``func`` ``count`` times; return each call's wall time in nanoseconds."""
    clock = time.perf_counter_ns
    samples = [0] * count
    for i in range(count):
        start = clock()
        func()
        samples[i] = clock() - start
    return samples


def fmt_number(value: float | None) -> str:
    """Three significant digits, thousands separated; ``—`` for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Row:
    """One measurement of startos beside one baseline from the same run.

    ``met`` is ``None`` when the issue sets no target for this row (it is then informational).
    """

    metric: str
    value: float
    baseline: str
    baseline_value: float | None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        """``value / baseline_value``: above 1 means startos is bigger (slower for latencies)."""
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value

    def cells(self) -> list[str]:
        ratio = self.ratio
        verdict = "" if self.met is None else ("met" if self.met else "**missed**")
        return [
            self.metric,
            fmt_number(self.value),
            self.baseline,
            fmt_number(self.baseline_value),
            "—" if ratio is None else f"{ratio:.2f}x",
            self.target or "—",
            verdict or "—",
        ]


@dataclass
class Table:
    """The result of one benchmark: a titled list of rows and the notes that explain them."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    HEADER = ("metric", "startos", "baseline", "baseline value", "ratio", "target", "verdict")

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def to_markdown(self) -> str:
        """The table as GitHub-flavoured markdown, notes as a list below it."""
        lines = [f"### {self.name}: {self.title}", ""]
        lines.append("| " + " | ".join(self.HEADER) + " |")
        lines.append("|" + "|".join("---" for _ in self.HEADER) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Table:
        return cls(
            name=data["name"],
            title=data["title"],
            rows=[Row(**row) for row in data.get("rows", [])],
            notes=list(data.get("notes", [])),
        )


def filesystem_of(path: Path) -> str:
    """The filesystem type holding ``path`` (from /proc/mounts), e.g. ``ext4`` or ``tmpfs``."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, fstype = "", "unknown"
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount_point = parts[1]
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best):
            best, fstype = mount_point, parts[2]
    return fstype


def machine_summary() -> str:
    """One line about where the numbers come from."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"


def bench_main(run: Callable[[bool], list[Table]], description: str | None) -> None:
    """The command line of one benchmark module: ``[--quick] [--json PATH]``."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the tables to this JSON file")
    args = parser.parse_args()
    tables = run(args.quick)
    for table in tables:
        print(table.to_markdown())
    if args.json is not None:
        args.json.write_text(json.dumps([table.to_dict() for table in tables], indent=2))


class ServerProcess:
    """``python <script> --serve ARGS...`` in a subprocess whose first line of output is its port(s);
    stopped (SIGTERM, then SIGKILL) and reaped on exit from the ``with`` block."""

    def __init__(self, script: str, *args: str) -> None:
        self.script = str(Path(script).resolve())
        self.args = args
        self.process: subprocess.Popen[str] | None = None
        self.ports: list[int] = []

    @property
    def port(self) -> int:
        return self.ports[0]

    def __enter__(self) -> ServerProcess:
        import gevent  # only the benchmark modules (already patched) start servers

        command = [sys.executable, self.script, "--serve", *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert self.process.stdout is not None
            with gevent.Timeout(60, TimeoutError(f"the {self.args[0]} server did not start")):
                line = self.process.stdout.readline()
            self.ports = [int(word) for word in line.split()]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
