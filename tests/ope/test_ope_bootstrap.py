"""The vectorised Poisson bootstrap: weights, chunking, memory bound, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bandits.ope.bootstrap as bootstrap
from bandits.ope import IPS, SNIPS
from bandits.ope.bootstrap import bootstrap_replicates, poisson1_weights


def test_poisson1_weights_distribution() -> None:
    w = poisson1_weights(np.random.default_rng(0), (1000, 1000)).astype(np.float64)
    assert w.mean() == pytest.approx(1.0, abs=0.005)
    assert w.var() == pytest.approx(1.0, abs=0.01)
    for k in range(4):
        expected = math.exp(-1.0) / math.factorial(k)
        assert np.mean(w == k) == pytest.approx(expected, abs=0.003)
    assert w.max() <= 10


def test_single_block_matches_naive_computation() -> None:
    rng = np.random.default_rng(1)
    n, b = 50, 40
    d, c, w = rng.normal(size=n), rng.normal(size=n), rng.random(n)
    reps = bootstrap_replicates((d, c, w), n, b, np.random.default_rng(5))
    weights = poisson1_weights(np.random.default_rng(5), (b, n)).astype(np.float64)
    expected = weights @ d / weights.sum(axis=1) + (weights @ c) / (weights @ w)
    np.testing.assert_allclose(reps, expected, rtol=1e-12)


class _ConstantUniforms:
    """Fake generator: every uniform is ``value`` (0.5 -> every Poisson weight is 1)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self, shape, dtype=np.float64):
        return np.full(shape, self.value, dtype=dtype)


@pytest.mark.parametrize("chunk_elements", [7, 64, 1000, 1 << 22])
def test_unit_weights_reproduce_the_point_estimate_for_any_chunking(chunk_elements: int) -> None:
    rng = np.random.default_rng(2)
    n = 123
    d, c, w = rng.normal(size=n), rng.normal(size=n), rng.random(n)
    reps = bootstrap_replicates((d, c, w), n, 9, _ConstantUniforms(0.5), chunk_elements)
    np.testing.assert_allclose(reps, d.mean() + c.sum() / w.sum(), rtol=1e-12)
    reps = bootstrap_replicates((d, None, None), n, 9, _ConstantUniforms(0.9), chunk_elements)
    np.testing.assert_allclose(reps, d.mean(), rtol=1e-12)  # all weights 2


def test_weight_blocks_respect_the_memory_bound(monkeypatch) -> None:
    shapes: list[tuple[int, int]] = []
    original = bootstrap.poisson1_weights

    def spy(rng, shape, out=None, scratch=None):
        shapes.append(shape)
        return original(rng, shape, out=out, scratch=scratch)

    monkeypatch.setattr(bootstrap, "poisson1_weights", spy)
    n, b, limit = 10_000, 300, 50_000
    reps = bootstrap_replicates(
        (np.ones(n), None, None), n, b, np.random.default_rng(0), chunk_elements=limit
    )
    assert max(r * c for r, c in shapes) <= limit
    assert sum(r * c for r, c in shapes) == n * b  # every (replicate, row) weight drawn once
    np.testing.assert_allclose(reps, 1.0)


def test_chunking_does_not_change_the_distribution() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    d = rng.exponential(size=n)
    big = bootstrap_replicates((d, None, None), n, 2000, np.random.default_rng(0))
    small = bootstrap_replicates((d, None, None), n, 2000, np.random.default_rng(1), 999)
    expected_se = d.std(ddof=1) / math.sqrt(n)
    for reps in (big, small):
        assert reps.mean() == pytest.approx(d.mean(), abs=4 * expected_se / math.sqrt(2000) + 1e-3)
        assert reps.std(ddof=1) == pytest.approx(expected_se, rel=0.08)


def test_replicates_without_rows_are_nan_and_dropped() -> None:
    reps = bootstrap_replicates(
        (np.array([1.0, 2.0]), None, None), 2, 500, np.random.default_rng(0)
    )
    assert np.isnan(reps).any()  # P(N* = 0) = e^-2
    e = IPS(interval="bootstrap", n_bootstrap=500, seed=0).estimate(
        reward=[1.0, 2.0], action=[0, 1], propensity=[0.5, 0.5], target_probs=[[0.5, 0.5]] * 2
    )
    assert all(math.isfinite(v) for v in (e.value, e.stderr, e.ci_low, e.ci_high))


def test_bootstrap_snips_without_support_is_infinite() -> None:
    e = SNIPS(interval="bootstrap", n_bootstrap=50, seed=0).estimate(
        reward=[1.0, 0.0, 1.0],
        action=[0, 0, 0],
        propensity=[0.5, 0.5, 0.5],
        target_probs=[[0.0, 1.0]] * 3,
    )
    assert e.value == 0.0 and e.stderr == math.inf
    assert (e.ci_low, e.ci_high) == (0.0, 1.0)  # the reward range: the log cannot tell


def test_bootstrap_matches_analytic_on_a_large_log() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    kwargs = {
        "reward": rng.random(n),
        "action": rng.integers(0, 2, n),
        "propensity": np.full(n, 0.5),
        "target_probs": np.tile([0.8, 0.2], (n, 1)),
    }
    for cls in (IPS, SNIPS):
        analytic = cls().estimate(**kwargs)
        boot = cls(interval="bootstrap", n_bootstrap=400, seed=0).estimate(**kwargs)
        assert boot.value == analytic.value
        assert boot.stderr == pytest.approx(analytic.stderr, rel=0.12)
        assert boot.ci_low == pytest.approx(analytic.ci_low, abs=analytic.stderr * 0.5)
        assert boot.ci_high == pytest.approx(analytic.ci_high, abs=analytic.stderr * 0.5)
