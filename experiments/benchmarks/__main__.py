"""Run the benchmarks and print one table: ``python -m experiments.benchmarks``.

Options: ``--quick`` (tiny sizes, a smoke test), ``--only NAME [NAME ...]`` (see ``--list``),
``--out PATH`` (markdown with machine info and the command; a full run writes
``experiments/benchmarks/results.md`` by default). Every benchmark runs in its own
subprocess, so each peak RSS is that benchmark's alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from experiments.benchmarks.common import (
    MEMORY_NOTE,
    Row,
    git_commit,
    machine_info,
    peak_rss_mib,
    table,
)

#: name -> "module:function"
BENCHMARKS: dict[str, str] = {
    "linucb": "experiments.benchmarks.linear:bench_linucb",
    "lints": "experiments.benchmarks.linear:bench_lints",
    "vw": "experiments.benchmarks.vw:bench_vw",
    "ope_10m": "experiments.benchmarks.ope:bench_ope_10m",
    "ope_stream": "experiments.benchmarks.ope:bench_ope_stream",
    "coverage": "experiments.benchmarks.coverage:bench_coverage",
    "mlflow": "experiments.benchmarks.apps:bench_mlflow",
    "sweep": "experiments.benchmarks.apps:bench_sweep",
    "default_job": "experiments.benchmarks.default_job:bench_default_job",
    "verdict_calibration": "experiments.benchmarks.verdict_calibration:bench_verdict_calibration",
    "thompson": "experiments.benchmarks.thompson:bench_thompson",
    "decide": "experiments.benchmarks.decide:bench_decide",
    "serve": "experiments.benchmarks.serve:bench_serve",
}

RESULTS = Path(__file__).with_name("results.md")


def run_one(name: str, quick: bool) -> list[Row]:
    """Run benchmark ``name`` in this process; rows carry this process's peak RSS."""
    module, func = BENCHMARKS[name].split(":")
    rows = getattr(importlib.import_module(module), func)(quick)
    rss = peak_rss_mib()
    for r in rows:
        if r.peak_rss_mib is None:
            r.peak_rss_mib = rss
    return rows


def _worker(name: str, quick: bool) -> None:
    rows = run_one(name, quick)
    print("@@ROWS@@" + json.dumps([r.to_dict() for r in rows]), flush=True)


def run_isolated(name: str, quick: bool) -> list[Row]:
    cmd = [sys.executable, "-m", "experiments.benchmarks", "--worker", name]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("@@ROWS@@"):
            return [Row.from_dict(d) for d in json.loads(line[len("@@ROWS@@") :])]
    tail = (proc.stderr or proc.stdout)[-1500:]
    return [Row(name, 0, 0.0, notes=f"FAILED (exit {proc.returncode}): {tail!r}", met=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these")
    parser.add_argument("--list", action="store_true", help="list benchmark names")
    parser.add_argument("--out", help="write the markdown report here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    if args.worker:
        _worker(args.worker, args.quick)
        return 0
    names = args.only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
        return 2
    info = machine_info()
    rows: list[Row] = []
    t0 = time.perf_counter()
    for name in names:
        print(f"… {name}", file=sys.stderr, flush=True)
        rows.extend(run_isolated(name, args.quick))
    total = time.perf_counter() - t0
    command = "python -m experiments.benchmarks" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    report = _report(rows, info, command, total)
    print(report)
    out = args.out or (RESULTS if not (args.quick or args.only) else None)
    if out:
        Path(out).write_text(report)
        print(f"(written to {os.path.relpath(out)})", file=sys.stderr)
    return 1 if any(r.notes.startswith("FAILED") for r in rows) else 0


def _report(rows: list[Row], info: dict[str, str], command: str, total: float) -> str:
    machine = "\n".join(f"- {k}: {v}" for k, v in info.items())
    return (
        "# Benchmarks\n\n"
        f"Command: `{command}` (commit {git_commit()}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{total:.0f} s in all)\n\n"
        f"Machine:\n{machine}\n\n"
        "Throughput is the best of several interleaved runs where a benchmark repeats (the "
        "machine may be shared); peers run in the same process, on the same data. Peak "
        f"memory: {MEMORY_NOTE}.\n\n" + table(rows) + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
