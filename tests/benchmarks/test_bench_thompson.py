"""The Thompson-sampling benchmark in its --quick form: sane rows, and no decision of
``beta_ts`` / ``segment_ts`` gives any variant probability exactly 0."""

from __future__ import annotations

import math

from experiments.benchmarks.thompson import POLICIES, bench_thompson


def test_bench_thompson_quick():
    rows = bench_thompson(quick=True)
    assert [r.name for r in rows] == [
        f"{name} {what}" for name in POLICIES for what in ("simulation (play)", "action_probs")
    ]
    for r in rows:
        assert r.events > 0 and r.seconds > 0 and math.isfinite(r.rate)
    for r in rows[::2]:
        assert r.extra["share_zero"] == 0.0 and r.extra["min_prob"] > 0.0
