"""Run the foundation benchmarks; print one markdown table per benchmark and save them.

    python benchmarks/run.py                 # actors (+ supervision), store, rpc: ~2-3 minutes
    python benchmarks/run.py --quick         # a smoke run of the same, under a minute
    python benchmarks/run.py --only store    # one benchmark (repeat --only for several)
    python benchmarks/run.py --all           # also s9pk (hashes 1 GiB) and services (~8 minutes)

Each benchmark module runs in its own process (each patches gevent itself and owns its actors,
servers and temp dirs); this orchestrator stays unpatched and only collects their tables. The
tables, a summary of the targets and the machine they ran on go to stdout and to
``benchmarks/results/latest.md``. Targets are goals, not test assertions: the exit code is
non-zero only when a benchmark failed to run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS_DIR, Table, machine_summary

HERE = Path(__file__).resolve().parent
BENCHMARKS: dict[str, str] = {
    "actors": "bench_actors.py",  # ask/tell, and the supervision table (restart, memory)
    "store": "bench_store.py",
    "rpc": "bench_rpc.py",
    "proxy": "bench_proxy.py",  # the ProxyActor plain and TLS vs direct (wrk): ~2.5 minutes
    "s9pk": "bench_s9pk.py",  # another helper's; hashes 1 GiB, so only on request
    # ~8 minutes (supervisord's 200 restarts alone take ~3.5), ~1.5 with --quick: only on request
    "services": "bench_services.py",
    # 200 services x 3 health checks at 1 s, against the same without checks: ~3 minutes, on request
    "health": "bench_health.py",
}
DEFAULT = ("actors", "store", "rpc", "proxy")
ON_REQUEST = ("s9pk", "services", "health")


def selected(args: argparse.Namespace) -> list[str]:
    """The benchmarks to run, in a fixed order; optional ones only if their file exists."""
    wanted = list(args.only) if args.only else [*DEFAULT, *(ON_REQUEST if args.all else ())]
    names: list[str] = []
    for name in BENCHMARKS:
        if name not in wanted:
            continue
        if not (HERE / BENCHMARKS[name]).exists():
            print(f"skipping {name}: {BENCHMARKS[name]} does not exist", file=sys.stderr)
            continue
        names.append(name)
    return names


def run_one(name: str, quick: bool, timeout: float) -> tuple[list[Table], str | None]:
    """Run one module in a subprocess; return its tables, or the error that stopped it."""
    with tempfile.TemporaryDirectory(prefix="startos-bench-run-") as scratch:
        out = Path(scratch) / "tables.json"
        command = [sys.executable, str(HERE / BENCHMARKS[name]), "--json", str(out)]
        if quick:
            command.append("--quick")
        print(f"== {name}: {shlex.join(command[1:])}", file=sys.stderr, flush=True)
        try:
            # stderr (progress) passes through; stdout (the same tables) is dropped for the JSON.
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return [], f"{name} did not finish within {timeout:.0f} s"
        if done.returncode != 0:
            return [], f"{name} exited with status {done.returncode}"
        if not out.exists():
            # A module that prints markdown but writes no JSON: keep what it printed.
            return [Table(name, "output as printed", notes=[done.stdout.strip()])], None
        return [Table.from_dict(item) for item in json.loads(out.read_text())], None


def summary(tables: list[Table]) -> str:
    """Every row that has a target, with its verdict."""
    lines = [
        "### targets",
        "",
        "| benchmark | metric | startos | target | verdict |",
        "|---|---|---|---|---|",
    ]
    met = missed = 0
    for table in tables:
        for row in table.rows:
            if row.met is None:
                continue
            met += row.met
            missed += not row.met
            cells = row.cells()
            lines.append(f"| {table.name} | {cells[0]} | {cells[1]} | {cells[5]} | {cells[6]} |")
    lines += ["", f"{met} met, {missed} missed.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations: a ~1 minute smoke run")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )  # fmt: skip
    parser.add_argument("--all", action="store_true", help="also run the on-request benchmarks: s9pk, services, health")
    args = parser.parse_args()

    names = selected(args)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    tables: list[Table] = []
    failures: list[str] = []
    for name in names:
        got, error = run_one(name, args.quick, timeout=300 if args.quick else 900)
        tables.extend(got)
        if error is not None:
            failures.append(error)
            print(f"!! {error}", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started

    command = shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]])
    header = [
        "# startos-py benchmarks",
        "",
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- command: `{command}` ({elapsed:.0f} s)",
        f"- machine: {machine_summary()}",
        f"- 1-minute load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
        "(anything else running on the machine skews these numbers)",
        "",
    ]
    body = "\n".join(header) + "\n" + "\n".join(table.to_markdown() for table in tables)
    if any(row.met is not None for table in tables for row in table.rows):
        body += "\n" + summary(tables)
    if failures:
        body += "\n### failures\n\n" + "\n".join(f"- {failure}" for failure in failures) + "\n"
    print(body)

    RESULTS_DIR.mkdir(exist_ok=True)  # git-ignored (the repository's .gitignore)
    (RESULTS_DIR / "latest.md").write_text(body)
    print(f"written to {RESULTS_DIR / 'latest.md'}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
