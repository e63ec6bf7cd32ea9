"""The ``simulate`` app end to end: how much of a run MLflow takes, and what the joblib launcher
buys for a sweep. Each command runs in a fresh temporary directory with its own
``MLFLOW_TRACKING_URI=sqlite:///<tmp>/mlflow.db``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from experiments.benchmarks.common import Row


def _run(args: list[str], cwd: str) -> float:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db"}
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.simulate", *args, "resume=false"],  # time, not skip
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"simulate {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return secs


def _runs(cwd: str):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{cwd}/mlflow.db")
    return mlflow.search_runs(experiment_names=["simulate"], output_format="list")


def _simulate_run(rounds: int, *extra: str) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="bench_mlflow_")
    try:
        wall = _run(["policy=linucb", f"rounds={rounds}", "progress=false", *extra], tmp)
        (run,) = [r for r in _runs(tmp) if r.data.metrics.get("simulation_seconds") is not None]
        return {
            "wall": wall,
            "duration": (run.info.end_time - run.info.start_time) / 1000.0,
            "sim": float(run.data.metrics["simulation_seconds"]),
            "plot": float(run.data.metrics.get("plot_seconds", 0.0)),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_mlflow(quick: bool) -> list[Row]:
    """Tracking overhead of one ``simulate`` run = its MLflow start→end time, minus the plot
    (matplotlib, reported apart: ``plot=false`` drops it), minus the time the same simulation
    takes when nothing is written during it (``decision_log.enabled=false``: the decision log
    is streamed by a background thread, which can slow the simulation itself down; taking
    the simulation time from the other run counts that slow-down as tracking)."""
    rounds = 2_000 if quick else 200_000
    reps = 1 if quick else 5
    full, bare = [], []
    for _ in range(reps):  # interleaved pairs; medians over the pairs
        full.append(_simulate_run(rounds))
        bare.append(_simulate_run(rounds, "decision_log.enabled=false", "plot=false"))
    # per pair: tracking = duration - plot - the simulation time of the run writing nothing
    per_pair = [
        max(f["duration"] - f["plot"] - b["sim"], 0.0) for f, b in zip(full, bare, strict=True)
    ]
    shares = [t / f["duration"] for t, f in zip(per_pair, full, strict=True)]
    med = {k: float(np.median([r[k] for r in full])) for k in full[0]}
    sim = float(np.median([r["sim"] for r in bare]))
    duration, plot = med["duration"], med["plot"]
    tracking = float(np.median(per_pair))
    share = float(np.median(shares))
    # the run writing no decision log: everything else MLflow does (params, config, curves,
    # summary) = its start→end time minus its own simulation time
    bare_shares = [max(b["duration"] - b["sim"], 0.0) / b["duration"] for b in bare]
    bare_share = float(np.median(bare_shares))
    bare_duration = float(np.median([b["duration"] for b in bare]))
    return [
        Row(
            "mlflow: simulate policy=linucb (one run)",
            rounds,
            duration,
            target="tracking ≤ 5% of the run",
            met=None if quick else share <= 0.05,
            notes=(
                f"medians over {reps} interleaved pairs of runs: run (MLflow start→end) "
                f"{duration:.2f} s = simulation {sim:.2f} s (measured in a run writing nothing "
                f"during it; {med['sim']:.2f} s while the decision log streams) + tracking "
                f"{tracking:.2f} s ({100 * share:.1f}%, pairs ranging "
                f"{100 * min(shares):.1f}–{100 * max(shares):.1f}%: params, config, the "
                "decision log built per day and streamed to parquet during the simulation, "
                "curves, summary, waiting for the writer) + "
                f"plot {plot:.2f} s ({100 * plot / duration:.1f}%, matplotlib, `plot=false` "
                f"drops it); process wall {med['wall']:.2f} s, so start-up, imports and config "
                f"before the run {med['wall'] - duration:.2f} s"
            ),
            extra={
                "share": share,
                "plot_share": plot / duration,
                "startup": med["wall"] - duration,
                "simulation": sim,
                "simulation_while_streaming": med["sim"],
                "share_range": (min(shares), max(shares)),
            },
        ),
        Row(
            "mlflow: the same run, decision_log.enabled=false plot=false",
            rounds,
            bare_duration,
            target="tracking ≤ 5% of the run",
            met=None if quick else bare_share <= 0.05,
            notes=(
                f"median of {reps}: tracking {100 * bare_share:.1f}% of the run (range "
                f"{100 * min(bare_shares):.1f}–{100 * max(bare_shares):.1f}%; params, config, "
                "curves streamed during the run, summary): the difference to the row above is "
                "the decision log itself (every round with two K-wide probability columns, built "
                "per day, zstd-encoded to parquet by the background writer)"
            ),
            extra={"share": bare_share},
        ),
    ]


def _sweep(rounds: int, seeds: str, n_jobs: int) -> dict[str, float]:
    base = ["-m", "policy=linucb", f"seed={seeds}", f"rounds={rounds}", "progress=false"]
    times = {}
    for launcher in ("basic", "local_parallel"):
        tmp = tempfile.mkdtemp(prefix="bench_sweep_")
        try:
            extra = ["hydra/launcher=local_parallel"] if launcher == "local_parallel" else []
            times[launcher] = _run([*base[:1], *extra, *base[1:]], tmp)
            runs = _runs(tmp)
            finished = [r for r in runs if r.info.status == "FINISHED"]
            assert len(finished) >= n_jobs, finished
            jobs = [r for r in runs if "simulation_seconds" in r.data.metrics]
            times[f"{launcher}_job"] = sum(
                (r.info.end_time - r.info.start_time) / 1000.0 for r in jobs
            ) / len(jobs)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return times


def bench_sweep(quick: bool) -> list[Row]:
    """Two job lengths: how much a sweep gains from 2 processes depends on how long a job
    runs compared with a process's start-up (imports: MLflow alone takes seconds)."""
    sizes = [2_000] if quick else [100_000, 500_000]
    seeds = "1,2" if quick else "1,2,3,4,5,6,7,8"
    n_jobs = len(seeds.split(","))
    rows = []
    for rounds in sizes:
        times = _sweep(rounds, seeds, n_jobs)
        speedup = times["basic"] / times["local_parallel"]
        rows.append(
            Row(
                f"sweep: {n_jobs} × simulate linucb rounds={rounds:,}, joblib launcher",
                n_jobs * rounds,
                times["local_parallel"],
                peers={"basic launcher": n_jobs * rounds / times["basic"]},
                target="≥ 1.7× the basic launcher",
                met=None if quick else speedup >= 1.7,
                notes=(
                    f"wall: basic {times['basic']:.1f} s, joblib (2 processes, started and "
                    f"imports warmed at sweep start) {times['local_parallel']:.1f} s → "
                    f"{speedup:.2f}×; one job (MLflow run) {times['basic_job']:.1f} s alone, "
                    f"{times['local_parallel_job']:.1f} s two at a time"
                ),
                extra={"speedup": speedup, **times},
            )
        )
    return rows
