"""The service benchmark in its --quick form: every row present, the numbers well formed."""

from __future__ import annotations

import pytest

from experiments.benchmarks.__main__ import BENCHMARKS


def test_serve_is_registered():
    assert BENCHMARKS["serve"] == "experiments.benchmarks.serve:bench_serve"


@pytest.mark.slow
def test_bench_serve_quick():
    from experiments.benchmarks.serve import bench_serve

    rows = bench_serve(quick=True, seconds=1.0)
    names = [r.name for r in rows]
    assert sum(n.startswith("store:") for n in names) == 4
    assert sum(n.startswith("ranker:") for n in names) == 2
    assert sum("at 200/s" in n for n in names) == 2 and sum("closed loop" in n for n in names) == 2
    for r in rows:
        assert r.events > 0 and r.seconds > 0
    store = {r.name: r.extra for r in rows if r.name.startswith("store:")}
    for extra in store.values():
        assert extra["us_per_decision"] > 0 and extra["commits"] >= 1
    loaded = [r.extra for r in rows if "at 200/s" in r.name]
    for extra in loaded:
        assert extra["ok"] == extra["n"] and 0 < extra["p50"] <= extra["p99"] <= extra["max"]


def test_bench_store_quick(tmp_path):
    """The durable-logging rows alone (no server): group commit uses fewer commits than
    decisions when 16 callers write at once, never more commits than decisions."""
    from experiments.benchmarks.serve import _bundle, bench_store

    bundle, contexts = _bundle(tmp_path / "linucb")
    rows = bench_store(True, bundle, contexts, tmp_path)
    assert len(rows) == 4
    for r in rows:
        assert r.events == 200 and 1 <= r.extra["commits"] <= r.events
    one = {r.name: r for r in rows if "1 caller" in r.name}
    assert all(r.extra["commits"] == r.events for r in one.values())
