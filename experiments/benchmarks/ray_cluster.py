"""Ray on this machine (issue 17): an 8-job sweep on the Ray launcher against the basic and
joblib launchers (same run), and distributed off-policy evaluation of a partitioned
100M-row log with 1 and 2 Ray workers against the single-process streamed path.

``python -m experiments.benchmarks.ray_cluster`` (``--quick``: a smoke test; ``--only sweep``
or ``--only ope``; ``--rows``, ``--parts``, ``--batch-rows``; ``--out PATH`` writes the
markdown) prints one table and the numbers of the cost model the README quotes.

**Sweep.** ``simulate -m policy=linucb seed=1..8 rounds=100,000`` on ``hydra/launcher=basic``
(one process), ``local_parallel`` (joblib, 2 processes) and ``ray`` (a local runtime of 2
CPUs), each in a fresh directory with its own SQLite store, one after the other; wall time of
the whole command (Python start-up, Ray start-up, imports, MLflow included).

**OPE.** A synthetic log (``x`` float32, ``action`` int8 of K = 10, ``reward`` 0/1,
``propensity`` 1/K; the data of :mod:`experiments.benchmarks.ope`'s streamed benchmark)
written as ``--parts`` parquet files by a separate process. Each configuration runs in its
own subprocess (so each peak RSS is its own): ``stream`` —
:func:`bandits.experiment.evaluate_log_stream` in one process; ``ray N`` —
:func:`bandits.experiment.distributed.evaluate_partitions` on a local runtime of N CPUs
(N workers), uniform target policy, ridge reward model fitted on the first batch,
estimators IPS, SNIPS, DM, DR, SNDR. Per worker: rows it processed ÷ the seconds its tasks
ran, and its process's peak RSS (ru_maxrss, imports included). The per-partition overhead is
measured on the same machine with many tiny parts, the merge on the driver by timing it.

The machine is shared: before each timed configuration the benchmark waits (up to 4 min)
for the 1-minute load average to fall below 1.5, and records the load it started at.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from experiments.benchmarks.common import Row, git_commit, machine_info, peak_rss_mib, table

ESTIMATORS = ["ips", "snips", "dm", "dr", "sndr"]
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=local_parallel"],
    "ray": ["hydra/launcher=ray", "hydra.launcher.num_cpus=2"],
}


def load() -> str:
    """The 1-minute load average, as text."""
    return f"{os.getloadavg()[0]:.2f}"


#: before each timed configuration, wait (at most SETTLE_S seconds) for the 1-minute load
#: average to fall below this (the machine is shared; our own previous configuration also
#: leaves ~2 in it)
QUIET_LOAD, SETTLE_S = 1.5, 240.0


def settle() -> None:
    deadline = time.monotonic() + SETTLE_S
    while os.getloadavg()[0] >= QUIET_LOAD and time.monotonic() < deadline:
        time.sleep(5)


# --------------------------------------------------------------------------- sweep
def _sweep_once(launcher: str, rounds: int, seeds: str) -> dict[str, float]:
    from experiments.benchmarks.apps import _run, _runs

    tmp = tempfile.mkdtemp(prefix=f"bench_ray_sweep_{launcher}_")
    try:
        args = ["-m", *LAUNCHERS[launcher], "policy=linucb", f"seed={seeds}"]
        settle()
        before = load()
        wall = _run([*args, f"rounds={rounds}", "progress=false"], tmp)
        jobs = [r for r in _runs(tmp) if "simulation_seconds" in r.data.metrics]
        assert len(jobs) == len(seeds.split(",")), jobs
        assert all(r.info.status == "FINISHED" for r in jobs)
        values = sorted(round(r.data.metrics["mean_reward"], 12) for r in jobs)
        job = sum((r.info.end_time - r.info.start_time) / 1000.0 for r in jobs) / len(jobs)
        return {"wall": wall, "job": job, "load": float(before), "values": values}  # type: ignore[dict-item]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_sweep(quick: bool, sizes: list[int] | None = None) -> list[Row]:
    """The three launchers one after the other on the same sweep, for each job length (a
    launcher's fixed costs weigh less the longer a job runs)."""
    rows: list[Row] = []
    for rounds in [2_000] if quick else sizes or [100_000, 500_000]:
        rows += _sweep_rows(quick, rounds)
    return rows


def _sweep_rows(quick: bool, rounds: int) -> list[Row]:
    seeds = "1,2" if quick else "1,2,3,4,5,6,7,8"
    n = len(seeds.split(","))
    times = {name: _sweep_once(name, rounds, seeds) for name in LAUNCHERS}
    same = len({json.dumps(t["values"]) for t in times.values()}) == 1
    rows = []
    for name in LAUNCHERS:
        t = times[name]
        rows.append(
            Row(
                f"sweep: {n} × simulate linucb rounds={rounds:,}, {name} launcher",
                n * rounds,
                t["wall"],
                peers={}
                if name == "basic"
                else {"basic launcher": n * rounds / times["basic"]["wall"]},
                notes=(
                    f"wall {t['wall']:.1f} s ({times['basic']['wall'] / t['wall']:.2f}× basic); "
                    f"one job (its MLflow run) {t['job']:.1f} s; load {t['load']:.2f} at start"
                    + ("; same mean rewards as the other launchers" if same else "; VALUES DIFFER")
                ),
                extra={k: v for k, v in t.items() if k != "values"},
            )
        )
    return rows


# --------------------------------------------------------------------------- OPE
def write_parts(directory: str, rows: int, parts: int) -> float:
    """``parts`` parquet files of ``rows`` rows in all (the streamed benchmark's log,
    :func:`experiments.benchmarks.ope.generate_parquet`), by a separate process; seconds."""
    from experiments.benchmarks.ope import generate_parquet

    return generate_parquet(directory, rows, parts=parts)


def _evaluate(mode: str, directory: str, batch_rows: int) -> dict[str, Any]:
    """One configuration, in this (fresh) process: ``stream`` or ``ray<N>``."""
    from bandits.data import iter_log_batches
    from bandits.experiment import evaluate_log_stream
    from bandits.policies import make_policy

    policy = make_policy("uniform", {})
    settings: dict[str, Any] = {"estimators": ESTIMATORS, "reward_model": "ridge"}
    out: dict[str, Any] = {"mode": mode, "load": float(load())}
    t0 = time.perf_counter()
    if mode == "stream":
        batches = iter_log_batches(directory, batch_rows=batch_rows, context_columns=["x"])
        result = evaluate_log_stream(batches, policy, **settings)
        out["seconds"] = time.perf_counter() - t0
    else:
        from bandits import cluster
        from bandits.experiment.distributed import evaluate_partitions, plan_partitions

        workers = int(mode[3:])
        cluster.connect(num_cpus=workers, object_store_memory=300 * 2**20)
        out["ray_init"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        plan = plan_partitions(directory, batch_rows=batch_rows, context_columns=["x"])
        out["plan"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        result, parts = evaluate_partitions(plan, policy, **settings)
        out["evaluate"] = time.perf_counter() - t2  # fit on the first batch + tasks + merge
        out["seconds"] = time.perf_counter() - t0
        busy: dict[int, float] = defaultdict(float)
        rows: dict[int, int] = defaultdict(int)
        rss: dict[int, float] = defaultdict(float)
        for p in parts:
            busy[p.pid] += p.seconds
            rows[p.pid] += p.n
            rss[p.pid] = max(rss[p.pid], p.peak_rss_mib)
        out["workers"] = [
            {"pid": pid, "rows": rows[pid], "busy": busy[pid], "peak_rss_mib": rss[pid]}
            for pid in sorted(busy)
        ]
        out["partitions"] = len(parts)
        out["partition_seconds"] = [p.seconds for p in parts]
        # merge cost on the driver: merging every partition's statistics and finalising
        from bandits.experiment.evaluation import estimators_of

        ests = estimators_of(ESTIMATORS)
        t3 = time.perf_counter()
        for _ in range(20):
            stats = [sum(s[1:], s[0]) for s in zip(*(p.stats for p in parts), strict=True)]
            [e.finalize(s) for e, s in zip(ests, stats, strict=True)]
        out["merge_per_call"] = (time.perf_counter() - t3) / 20
        cluster.shutdown()
    assert result.evaluation is not None
    out["n"] = result.evaluation.n
    out["values"] = {k: e.value for k, e in result.evaluation.estimates.items()}
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def _in_subprocess(mode: str, directory: str, batch_rows: int) -> dict[str, Any]:
    settle()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "experiments.benchmarks.ray_cluster"),
            *("--one", mode, directory, "--batch-rows", str(batch_rows)),
        ],
        capture_output=True,
        text=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_ope(quick: bool, rows: int, parts: int, batch_rows: int) -> tuple[list[Row], dict]:
    if quick:
        rows, parts, batch_rows = 2_000_000, 4, 250_000
    tmp = tempfile.mkdtemp(prefix="bench_ray_ope_")
    tiny = tempfile.mkdtemp(prefix="bench_ray_ope_tiny_")
    try:
        gen = write_parts(tmp, rows, parts)
        size = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
        results = {m: _in_subprocess(m, tmp, batch_rows) for m in ("stream", "ray1", "ray2")}
        n_tiny, tiny_rows = (20, 1_000) if quick else (200, 1_000)
        write_parts(tiny, n_tiny * tiny_rows, n_tiny)
        overhead = _in_subprocess("ray2", tiny, batch_rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tiny, ignore_errors=True)
    ref = results["stream"]["values"]
    out_rows = []
    for mode, r in results.items():
        worst = max(abs(r["values"][k] - ref[k]) for k in ref)
        if mode == "stream":
            notes = (
                f"one process, {batch_rows:,}-row batches over {parts} parts; load {r['load']:.2f}"
            )
        else:
            per = [w["rows"] / w["busy"] for w in r["workers"]]
            rss = [w["peak_rss_mib"] for w in r["workers"]]
            notes = (
                f"{len(r['workers'])} worker(s): "
                + ", ".join(f"{p / 1e6:.2f} M rows/s" for p in per)
                + " per worker, peak RSS "
                + ", ".join(f"{m:.0f}" for m in rss)
                + f" MiB per worker; Ray start {r['ray_init']:.1f} s, plan (first batch, "
                f"catalog scan) {r['plan']:.1f} s, tasks + fit + merge {r['evaluate']:.1f} s; "
                f"max |Δ| vs stream {worst:.1e}; load {r['load']:.2f}"
            )
        out_rows.append(
            Row(
                f"ope: {rows / 1e6:g}M-row log in {parts} parts, "
                + ("streamed" if mode == "stream" else f"Ray, {mode[3:]} worker(s)"),
                rows,
                r["seconds"],
                unit="rows",
                peers={} if mode == "stream" else {"streamed": rows / results["stream"]["seconds"]},
                notes=notes,
                extra=r,
                peak_rss_mib=r["peak_rss_mib"],
            )
        )
    per_part = sum(overhead["partition_seconds"]) / overhead["partitions"]
    model = {
        "rows": rows,
        "parts": parts,
        "file_mib": size,
        "generate_s": gen,
        "per_row_us_1": 1e6 * sum(w["busy"] for w in results["ray1"]["workers"]) / rows,
        "per_row_us_2": 1e6 * sum(w["busy"] for w in results["ray2"]["workers"]) / rows,
        "per_partition_s": per_part,
        "tiny_parts": overhead["partitions"],
        "tiny_wall": overhead["evaluate"],
        "merge_s_per_call": results["ray2"]["merge_per_call"],
        "ray_init_s": results["ray2"]["ray_init"],
        "plan_s": results["ray2"]["plan"],
    }
    return out_rows, model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["sweep", "ope"])
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--parts", type=int, default=10)
    ap.add_argument("--batch-rows", type=int, default=2_000_000)
    ap.add_argument("--sweep-rounds", type=int, nargs="+", default=[100_000, 500_000])
    ap.add_argument("--one", nargs=2, metavar=("MODE", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(_evaluate(args.one[0], args.one[1], args.batch_rows)))
        return
    t0, start_load = time.perf_counter(), load()
    rows: list[Row] = []
    model: dict[str, Any] = {}
    if args.only in (None, "sweep"):
        rows += bench_sweep(args.quick, args.sweep_rounds)
    if args.only in (None, "ope"):
        ope_rows, model = bench_ope(args.quick, args.rows, args.parts, args.batch_rows)
        rows += ope_rows
    text = (
        f"Command: `python -m experiments.benchmarks.ray_cluster {' '.join(sys.argv[1:])}` "
        f"(commit {git_commit()}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{time.perf_counter() - t0:.0f} s; load average {start_load} at start, {load()} at end)"
        "\n\nMachine: "
        + ", ".join(f"{k} {v}" for k, v in machine_info().items())
        + "\n\n"
        + table(rows)
        + ("\n\nCost model inputs: " + json.dumps(model, indent=1) if model else "")
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
