"""The decide benchmark in its --quick form: sane rows for LinUCB (with and without a
holdout) and VW."""

from __future__ import annotations

import math

from experiments.benchmarks.decide import bench_decide


def test_bench_decide_quick():
    rows = bench_decide(quick=True)
    assert [r.name for r in rows] == [
        "decide linucb",
        "decide linucb, 10% retargeting holdout",
        "decide vw",
    ]
    for r in rows:
        assert r.events > 0 and r.seconds > 0 and math.isfinite(r.rate)
