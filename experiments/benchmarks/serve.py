"""The HTTP service: rank latency and throughput under a bounded local load, and what
durable logging costs per decision.

``python -m experiments.benchmarks.serve`` (``--quick``: a smoke test; ``--seconds``,
``--rate``, ``--out``) prints one table (and writes it with ``--out``):

* **durable logging** (the store alone, in process, no HTTP): decisions written one per
  commit by one caller (``sync=full``: each commit fsyncs the write-ahead log; ``sync=off``:
  no fsync), and the same with 16 callers at once, where the writer thread's group commit
  lets many decisions share one fsync. Per-decision cost = wall time / decisions.
* **open-loop load at ``--rate`` requests/s** (default 200) for ``--seconds`` (default 20):
  the ``serve`` app as a real server process (LinUCB, trained on the simulator; ``sync=full``
  and ``sync=off``), ``POST /rank`` requests scheduled at fixed intervals from 32 client
  threads; latency is measured from each request's *scheduled* time (so a stalled server is
  not hidden by the client waiting: no coordinated omission). Target: p99 ≤ 20 ms at 200/s.
* **closed-loop throughput**: 8 clients sending back to back for ``--seconds / 2``.
* **in process** (no HTTP, no store): one request's parse + decision (the ranker), the
  server's own CPU work per decision before the HTTP stack and the store.

All requests go to 127.0.0.1; the client runs on the same (shared, 2-core) machine and its
CPU competes with the server's, so the numbers are a floor of what the server does alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmarks.common import Row, git_commit, machine_info, table

#: Client threads of the open-loop test (enough that requests in flight never wait for a
#: free client at the target rate: 32 × 1/200 s = 160 ms of latency before the schedule
#: slips) and of the closed-loop test.
OPEN_CLIENTS = 32
CLIENTS = 8
RATE_TARGET = 200.0
P99_TARGET_MS = 20.0


def _bundle(folder: Path, seed: int = 5) -> tuple[Path, list[dict[str, Any]]]:
    """A LinUCB bundle trained on two simulated days, and a fresh day's contexts."""
    from bandits.deploy.bundle import save_bundle
    from bandits.policies import make_policy
    from bandits.simulate import AudienceSettings, Environment, problem_spec

    env = Environment(AudienceSettings(impressions_per_day=2_000), seed)
    spec = problem_spec(env)
    policy = make_policy("linucb", {"epsilon": 0.05}).bind(spec, seed)
    for _ in range(2):
        day = env.next_day(2_000)
        env.commit(day, policy.play(spec.contexts(day.frame), day.potential_reward).actions)
    save_bundle(folder, policy)
    contexts = env.next_day(2_000).frame.drop("timestamp", "user_key", "hour").to_dicts()
    return folder, contexts


# ------------------------------------------------------------------ durable logging cost


def _records(bundle: Path, contexts: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    from bandits.deploy.bundle import load_bundle
    from bandits.serve.ranker import Ranker

    ranker = Ranker(load_bundle(bundle), seed=np.random.SeedSequence(1), batch="bench")
    return [ranker.rank({"context": contexts[i % len(contexts)]})[0] for i in range(n)]


def _store_cost(
    records: list[dict[str, Any]], folder: Path, sync: str, callers: int
) -> tuple[float, int]:
    """Seconds to write ``records`` (``callers`` threads, each submitting one decision and
    waiting for its commit before the next) and the number of commits used."""
    from bandits.serve.store import DecisionStore, encode_schema

    path = folder / f"store-{sync}-{callers}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = DecisionStore(path, sync=sync)
    import json

    import polars as pl

    schema = pl.DataFrame([{k: v for k, v in records[0].items() if k != "__start"}]).schema
    store.ensure_meta({"record_schema": json.dumps(encode_schema(schema))}, {})
    store.start()
    per = [records[i::callers] for i in range(callers)]

    def run(mine: list[dict[str, Any]]) -> None:
        for rec in mine:
            store.submit_decisions([rec]).result(timeout=60)

    threads = [threading.Thread(target=run, args=(m,)) for m in per]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    commits = store.commits
    written = store.counts().decisions
    store.close()
    assert written == len(records)
    return seconds, commits


def bench_ranker(quick: bool, bundle: Path, contexts: list[dict[str, Any]]) -> list[Row]:
    """Per-request parse + decide in process: the CPU the server spends per decision
    outside HTTP and the store (process time, so other processes' load is not counted)."""
    from bandits.deploy.bundle import load_bundle
    from bandits.serve.ranker import Ranker

    ranker = Ranker(load_bundle(bundle), seed=np.random.SeedSequence(2), batch="bench")
    bodies = [{"context": c} for c in contexts]
    for b in bodies[:50]:
        ranker.rank(b)
    n = 300 if quick else 3_000
    cpu = np.empty(n)
    for i in range(n):
        t = time.process_time()
        ranker.rank(bodies[i % len(bodies)])
        cpu[i] = time.process_time() - t
    k = 8
    t = time.process_time()
    for i in range(0, n, k):
        ranker.rank_parsed([ranker.parse(bodies[j % len(bodies)]) for j in range(i, i + k)])
    batched = time.process_time() - t
    return [
        Row(
            "ranker: parse + decide in process, 1 request at a time",
            n,
            float(cpu.sum()),
            unit="decisions",
            notes=f"CPU per decision: mean {cpu.mean() * 1e3:.2f} ms (process time)",
            extra={"cpu_ms": float(cpu.mean() * 1e3)},
        ),
        Row(
            f"ranker: parse + decide in process, batches of {k}",
            n,
            batched,
            unit="decisions",
            notes=f"CPU per decision: {batched / n * 1e3:.2f} ms (what a loaded server batches)",
            extra={"cpu_ms": batched / n * 1e3},
        ),
    ]


def bench_store(quick: bool, bundle: Path, contexts: list[dict[str, Any]], tmp: Path) -> list[Row]:
    n = 200 if quick else 2_000
    records = _records(bundle, contexts, n)
    rows = []
    for sync, callers in (("full", 1), ("off", 1), ("full", 16), ("off", 16)):
        seconds, commits = _store_cost(records, tmp, sync, callers)
        label = "fsync every commit" if sync == "full" else "no fsync"
        rows.append(
            Row(
                f"store: durable log, {callers} caller{'s' if callers > 1 else ''} (sync={sync})",
                n,
                seconds,
                unit="decisions",
                notes=(
                    f"{seconds / n * 1e6:,.0f} µs per decision ({label}); {commits:,} commits "
                    f"for {n:,} decisions ({n / commits:.1f} per commit)"
                ),
                extra={"us_per_decision": seconds / n * 1e6, "commits": commits},
            )
        )
    return rows


# ------------------------------------------------------------------------- HTTP load


def _open_loop(url: str, contexts: list[dict[str, Any]], rate: float, seconds: float) -> dict:
    """``rate`` × ``seconds`` rank requests at scheduled times; latencies from schedule."""
    import requests

    n = int(rate * seconds)
    latency = np.full(n, np.nan)
    status = np.zeros(n, np.int64)
    lock = threading.Lock()
    nxt = [0]
    t0 = time.perf_counter() + 0.2

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                r = session.post(
                    url + "/rank", json={"context": contexts[i % len(contexts)]}, timeout=10
                )
                status[i] = r.status_code
            except requests.RequestException:
                status[i] = -1
            latency[i] = time.perf_counter() - due

    threads = [threading.Thread(target=client) for _ in range(OPEN_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    ms = latency * 1e3
    return {
        "n": n,
        "elapsed": elapsed,
        "ok": int((status == 200).sum()),
        "p50": float(np.nanpercentile(ms, 50)),
        "p99": float(np.nanpercentile(ms, 99)),
        "max": float(np.nanmax(ms)),
        "achieved": float((status == 200).sum() / elapsed),
    }


def _closed_loop(url: str, contexts: list[dict[str, Any]], seconds: float) -> dict:
    import requests

    counts = [0] * CLIENTS
    lat: list[list[float]] = [[] for _ in range(CLIENTS)]
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        session = requests.Session()
        i = k
        while time.perf_counter() < stop:
            t = time.perf_counter()
            r = session.post(
                url + "/rank", json={"context": contexts[i % len(contexts)]}, timeout=10
            )
            if r.status_code == 200:
                counts[k] += 1
                lat[k].append(time.perf_counter() - t)
            i += CLIENTS

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    ms = np.concatenate([np.asarray(x) for x in lat]) * 1e3
    return {
        "ok": sum(counts),
        "elapsed": elapsed,
        "p50": float(np.median(ms)),
        "p99": float(np.percentile(ms, 99)),
    }


def bench_http(
    quick: bool,
    bundle: Path,
    contexts: list[dict[str, Any]],
    tmp: Path,
    seconds: float | None = None,
    rate: float = RATE_TARGET,
) -> list[Row]:
    from experiments.serve import ServerProcess

    seconds = seconds or (2.0 if quick else 20.0)
    rows = []
    for sync in ("full", "off"):
        store = tmp / f"http-{sync}.db"
        server = ServerProcess(
            [f"model={bundle}", f"store={store}", f"sync={sync}"], tmp / f"srv-{sync}"
        )
        with server:
            _open_loop(server.url, contexts, rate, min(1.0, seconds))  # warm up
            res = _open_loop(server.url, contexts, rate, seconds)
            closed = _closed_loop(server.url, contexts, seconds / 2)
        met = (
            res["p99"] <= P99_TARGET_MS and res["achieved"] >= 0.95 * rate and res["ok"] == res["n"]
        )
        rows.append(
            Row(
                f"serve: POST /rank at {rate:.0f}/s, LinUCB (sync={sync})",
                res["ok"],
                res["elapsed"],
                unit="requests",
                target=f"p99 ≤ {P99_TARGET_MS:.0f} ms at {RATE_TARGET:.0f}/s"
                if sync == "full"
                else "",
                met=met if sync == "full" else None,
                notes=(
                    f"latency from the scheduled time: p50 {res['p50']:.1f} ms, p99 "
                    f"{res['p99']:.1f} ms, max {res['max']:.1f} ms; {res['ok']:,} of {res['n']:,} "
                    f"answered 200; {res['achieved']:.0f}/s achieved"
                ),
                extra=res,
            )
        )
        rows.append(
            Row(
                f"serve: POST /rank closed loop, {CLIENTS} clients (sync={sync})",
                closed["ok"],
                closed["elapsed"],
                unit="requests",
                notes=f"p50 {closed['p50']:.1f} ms, p99 {closed['p99']:.1f} ms per request",
                extra=closed,
            )
        )
    return rows


def bench_serve(quick: bool, seconds: float | None = None, rate: float = RATE_TARGET) -> list[Row]:
    """Rows: the store's per-decision cost (4 rows), then open- and closed-loop HTTP rows
    for ``sync=full`` and ``sync=off``."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        bundle, contexts = _bundle(tmp / "linucb")
        return (
            bench_ranker(quick, bundle, contexts)
            + bench_store(quick, bundle, contexts, tmp)
            + bench_http(quick, bundle, contexts, tmp, seconds, rate)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--seconds", type=float, default=None, help="open-loop duration")
    parser.add_argument("--rate", type=float, default=RATE_TARGET, help="requests per second")
    parser.add_argument("--out", help="write the markdown report here")
    args = parser.parse_args(argv)
    info = machine_info()
    rows = bench_serve(args.quick, args.seconds, args.rate)
    cmd = "python -m experiments.benchmarks.serve" + " ".join(["", *(argv or sys.argv[1:])])
    machine = "\n".join(f"- {k}: {v}" for k, v in info.items())
    report = (
        "# The HTTP service: latency, throughput, durable logging\n\n"
        f"Command: `{cmd.strip()}` (commit {git_commit()})\n\nMachine:\n{machine}\n\n"
        + table(rows)
        + "\n"
    )
    print(report)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
