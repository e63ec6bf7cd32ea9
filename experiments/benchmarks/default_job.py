"""Wall time of the default ``python -m experiments.compare``, replications included, with the
per-replication cost beside it.

``python -m experiments.benchmarks.default_job [--fresh-clone] [--repeats N] [--out PATH]
[ARGS...]`` (results: ``default_job_results.md``)
runs the job (``ARGS``: extra Hydra overrides) in a fresh temporary directory with its own
MLflow store and reports its wall time, the number of replications and worker processes,
the median and total of the replications' own seconds (the ``seconds`` metric of each
replication's child run, measured in its worker) and the rest: start-up, imports, MLflow,
the report. ``--fresh-clone`` runs it from a ``git clone`` of the current commit (no numba
cache, no ``mlflow.db``: what a new user's first run pays); ``python -m experiments.benchmarks
--only default_job`` runs it as one benchmark row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmarks.common import Row, git_commit

ROOT = Path(__file__).resolve().parents[2]
QUICK_ARGS = ("audience=small", "rounds=2000", "eval_rounds=500", "replications=4")


def run_default_job(extra: tuple[str, ...] = (), fresh_clone: bool = False) -> dict[str, Any]:
    """Run the compare app once; returns wall seconds and the replications' own seconds."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    try:
        cwd = ROOT
        if fresh_clone:
            cwd = tmp / "clone"
            subprocess.run(
                ["git", "clone", "--quiet", str(ROOT), str(cwd)], check=True, capture_output=True
            )
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
        env.pop("MLFLOW_EXPERIMENT_NAME", None)
        cmd = [
            sys.executable,
            "-m",
            "experiments.compare",
            *extra,
            "progress=false",
            f"hydra.run.dir={tmp / 'out'}",
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"compare failed:\n{proc.stderr[-2000:]}")
        import mlflow

        mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
        runs = mlflow.search_runs(experiment_names=["compare"], output_format="list")
        (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "compare"]
        reps = [r for r in runs if r.data.tags.get("run_kind") == "compare_replication"]
        seconds = np.array([r.data.metrics["seconds"] for r in reps])
        return {
            "wall": wall,
            "replications": len(reps),
            "n_jobs": int(parent.data.params.get("n_jobs", "1")),
            "per_replication": float(np.median(seconds)),
            "replication_total": float(seconds.sum()),
            "headline": parent.data.tags.get("headline", ""),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_default_job(quick: bool) -> list[Row]:
    """One row: the default job (quick: a small audience, 4 replications)."""
    r = run_default_job(QUICK_ARGS if quick else ())
    rest = r["wall"] - r["replication_total"] / max(r["n_jobs"], 1)
    return [
        Row(
            "compare default job" + (" (quick)" if quick else ""),
            r["replications"],
            r["wall"],
            unit="replications",
            target="well under 180 s on 2 cores",
            met=r["wall"] < 180,
            notes=(
                f"{r['replications']} replications on {r['n_jobs']} workers: "
                f"{r['per_replication']:.1f} s each (median), {r['replication_total']:.0f} s "
                f"in all; the rest (start-up, MLflow, report) ≈ {rest:.0f} s"
            ),
            extra=r,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.default_job")
    parser.add_argument("--fresh-clone", action="store_true", help="run from a fresh git clone")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", help="also write the table here (markdown)")
    parser.add_argument("args", nargs="*", help="extra Hydra overrides for the job")
    ns = parser.parse_args(argv)
    given = " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"# The default compare job (commit {git_commit()}, {time.strftime('%Y-%m-%d %H:%M')})",
        "",
        "Command: `" + f"python -m experiments.benchmarks.default_job {given}".strip() + "`",
        "",
        "| run | wall (s) | replications | workers | per replication (s, median) | "
        "replications' own total (s) | the rest (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in range(ns.repeats):
        fresh = ns.fresh_clone and i == 0
        r = run_default_job(tuple(ns.args), fresh_clone=fresh)
        rest = r["wall"] - r["replication_total"] / max(r["n_jobs"], 1)
        lines.append(
            f"| {i + 1}{' (fresh clone)' if fresh else ''} | {r['wall']:.1f} | "
            f"{r['replications']} | {r['n_jobs']} | {r['per_replication']:.2f} | "
            f"{r['replication_total']:.1f} | {rest:.1f} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    lines += [
        "",
        "Per replication: the median of the replications' own `seconds` (each measured in its "
        "worker, for every rung of the ladder); the rest is the wall time minus their total "
        "divided by the workers: start-up, imports, MLflow runs, the report.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if ns.out:
        Path(ns.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
