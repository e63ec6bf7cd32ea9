"""OPE benchmarks in their --quick form, and the fused paths they time: estimate_many and
partial_many give each estimator's own estimate / partial (to 1e-12), and the streamed
100M-row pipeline (here tiny) equals the in-memory estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.ope import (
    DM,
    DR,
    ESTIMATORS,
    IPS,
    SNIPS,
    Stats,
    estimate_many,
    partial_many,
)
from experiments.benchmarks.ope import (
    _reward_hat,
    _softmax_policy,
    bench_ope_10m,
    bench_ope_stream,
    generate_parquet,
    logged_data,
    stream_estimates,
)


def _data(n=5000, seed=0, logging_probs=False):
    log = logged_data(n, seed)
    kw = dict(
        reward=log["reward"],
        action=log["action"],
        propensity=log["propensity"],
        target_probs=_softmax_policy(log["x"]),
        reward_hat=_reward_hat(log["x"]),
    )
    if logging_probs:
        kw["logging_probs"] = np.full(kw["target_probs"].shape, 0.1)
    return kw


def _same(a, b):
    assert a.estimator == b.estimator and a.n == b.n and a.interval == b.interval
    for f in ("value", "stderr", "ci_low", "ci_high"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x == y) or abs(x - y) <= 1e-12, (f, x, y)
    assert a.diagnostics.keys() == b.diagnostics.keys()
    for k in a.diagnostics:
        assert abs(a.diagnostics[k] - b.diagnostics[k]) <= 1e-12


def test_bench_ope_10m_quick():
    rows = bench_ope_10m(quick=True)
    for r in rows:
        assert r.events > 0 and r.seconds > 0 and math.isfinite(r.rate)
    assert all(0.0 < v < 1.0 for v in rows[0].extra["values"].values())


@pytest.mark.parametrize("logging_probs", [False, True])
def test_estimate_many_equals_each_estimate(logging_probs):
    kw = _data(logging_probs=logging_probs)
    ests = [cls() for cls in ESTIMATORS.values()]
    ests += [IPS(clip=3.0), DR(interval="bootstrap", n_bootstrap=50, seed=1)]
    for got, est in zip(estimate_many(ests, **kw), ests, strict=True):
        _same(got, est.estimate(**kw))


def test_partial_many_equals_each_partial_and_merges():
    kw = _data(n=4000)
    ests = [IPS(), SNIPS(), DM(), DR()]
    halves = [{k: v[:1500] for k, v in kw.items()}, {k: v[1500:] for k, v in kw.items()}]
    parts = [partial_many(ests, **h) for h in halves]
    for i, est in enumerate(ests):
        for h, p in zip(halves, parts, strict=True):
            ref = est.partial(**h)
            np.testing.assert_array_equal(p[i].means, ref.means)
            np.testing.assert_array_equal(p[i].comoments, ref.comoments)
        merged = est.finalize(Stats.merge_all([p[i] for p in parts]))
        whole = est.estimate(**kw)
        assert merged.value == pytest.approx(whole.value, abs=1e-12)
        assert merged.stderr == pytest.approx(whole.stderr, rel=1e-9)


def test_estimate_many_errors_name_an_estimator_that_needs_the_argument():
    kw = _data(n=50)
    kw.pop("reward_hat")
    with pytest.raises(ValueError, match=r"reward_hat .* required by DR"):
        estimate_many([IPS(), DR()], **kw)
    assert estimate_many([], **kw) == []
    with pytest.raises(ValueError, match="level"):
        estimate_many([IPS(level=2.0)], **kw)


def test_streamed_parquet_equals_in_memory(tmp_path):
    path = str(tmp_path / "log.parquet")
    generate_parquet(path, 30_000, chunk=7_000)
    n, streamed = stream_estimates(path, batch_rows=4_000)
    assert n == 30_000
    import pyarrow.parquet as pq

    t = pq.read_table(path).to_pydict()
    x = np.asarray(t["x"], dtype=np.float32).astype(np.float64)
    kw = dict(
        reward=np.asarray(t["reward"], dtype=np.float64),
        action=np.asarray(t["action"], dtype=np.int64),
        propensity=np.asarray(t["propensity"]),
        target_probs=_softmax_policy(x),
        reward_hat=_reward_hat(x),
    )
    for got in streamed:
        (ref,) = estimate_many([ESTIMATORS[got.estimator]()], **kw)
        assert got.value == pytest.approx(ref.value, abs=1e-12)
        assert got.stderr == pytest.approx(ref.stderr, rel=1e-9)


def test_bench_ope_stream_quick():
    (row,) = bench_ope_stream(quick=True)
    assert row.events == 2_000_000 and row.seconds > 0
    assert all(0.0 < v < 1.0 for v in row.extra["values"].values())
