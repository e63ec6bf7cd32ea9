"""LinUCB / LinTS benchmarks in their --quick form, and the fast paths they time: the compiled
replay equals the library's replay; LinTS probabilities keep their exactness guarantees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.data import load_log
from bandits.offline.replay import replay
from bandits.policies import make_policy
from bandits.policies.kernels import linear_ts as kern
from bandits.policies.kernels import normal
from bandits.simulate import run_online
from experiments.benchmarks.linear import bench_lints, bench_linucb, problem


def _sane(rows):
    for r in rows:
        assert r.events > 0 and r.seconds > 0 and math.isfinite(r.rate)
        for v in r.peers.values():
            assert v is None or v > 0


def test_bench_linucb_quick():
    rows = bench_linucb(quick=True)
    _sane(rows)
    assert 0 <= rows[0].extra["mean_regret"] < 0.5
    assert 0 < rows[1].extra["accepted"] < rows[1].events


def test_bench_lints_quick():
    rows = bench_lints(quick=True)
    _sane(rows)
    assert rows[1].extra["accepted"] > 0


@pytest.mark.parametrize("need_pi", [True, False])
@pytest.mark.parametrize(
    "name,settings", [("linucb", {}), ("lints", {"epsilon": 0.1}), ("lints", {})]
)
def test_compiled_replay_equals_library_replay(name, settings, need_pi, small_settings, small_env):
    """The compiled rejection-sampling replay makes the same acceptances and ends in the same
    state as bandits.offline.replay.replay with the same seed (also when LinTS decides events
    from bounds on the win probability, ``need_pi=False``)."""
    logger = run_online(small_env, make_policy("uniform"), 600, np.random.SeedSequence(4))
    data = load_log(logger.log, catalog=small_env.catalog.to_frame())
    spec = data.problem_spec()
    ref = make_policy(name, settings).reset(spec, 5)
    res = replay(data, ref, seed=9, min_accepted=1, compiled=False)  # the reference loop
    fast = make_policy(name, settings).reset(spec, 5)
    u = np.random.default_rng(np.random.SeedSequence(9)).random(data.n)
    accepted, _ = fast.replay(
        spec.contexts(data.frame),
        data.action,
        data.reward,
        data.propensity,
        u,
        float(data.propensity.min()),
        need_pi=need_pi,
    )
    np.testing.assert_array_equal(np.flatnonzero(accepted), res.accepted)
    np.testing.assert_array_equal(fast.A_inv_, ref.A_inv_)
    np.testing.assert_array_equal(fast.b_, ref.b_)
    np.testing.assert_array_equal(fast.theta_, ref.theta_)
    assert fast.n_updates_ == ref.n_updates_ == res.n_accepted


def test_play_is_bit_for_bit_blocks_of_batch_probs_and_sm_update():
    spec, ctx, potential, _ = problem(3000, seed=5)
    for name in ("linucb", "lints"):
        fast = make_policy(name).reset(spec, 1)
        ref = make_policy(name).reset(spec, 1)
        dec = fast.play(ctx, potential)
        for s in range(3000):
            part = ctx.slice(s, s + 1)
            np.testing.assert_array_equal(ref.action_probs(part)[0], dec.probs[s])
            a = dec.actions[s : s + 1]
            ref.update(part, a, potential[s : s + 1, a[0]], dec.propensities[s : s + 1])
        np.testing.assert_array_equal(fast.A_inv_, ref.A_inv_)
        np.testing.assert_array_equal(fast.theta_, ref.theta_)
        assert np.array_equal(fast.A_inv_, fast.A_inv_.transpose(0, 2, 1))  # exactly symmetric


def _ts(means, sds, n_nodes=16):
    nodes, weights = kern.gauss_hermite_normal(n_nodes)
    k = len(means)
    out = np.empty(k)
    kern.ts_probs(
        np.asarray(means, float),
        np.asarray(sds, float),
        nodes,
        weights,
        kern.weight_below(weights),
        np.empty(k, np.int64),
        np.empty((6, k)),
        out,
    )
    return out


def _reference_probs(means, sds, steps_per_sd=16, z=9.0):
    """Thompson win probabilities by a much finer trapezoid rule (``h = s_min / 16`` over
    ``max(m - 9s) .. max(m + 9s)``), with Φ from ``math.erfc``: a reference independent of
    the kernel's grid, table and truncation."""
    m, s = np.asarray(means, float), np.asarray(sds, float)
    lo, hi = np.max(m - z * s), np.max(m + z * s)
    h = s.min() / steps_per_sd
    t = lo + h * np.arange(int(np.ceil((hi - lo) / h)) + 1)
    Z = (t[:, None] - m) / s
    F = 0.5 * np.vectorize(math.erfc)(-Z / math.sqrt(2.0))
    f = np.exp(-0.5 * Z**2) / (math.sqrt(2.0 * math.pi) * s)
    out = np.empty(len(m))
    for k in range(len(m)):
        out[k] = h * np.sum(f[:, k] * np.prod(np.delete(F, k, axis=1), axis=1))
    return out


def test_lints_two_competing_arms_use_the_exact_closed_form():
    from statistics import NormalDist

    # arms 2..4 are pruned (P(X_k > X_leader) < 1e-16); arms 0 and 1 compete
    p = _ts([0.50, 0.48, -1.0, -2.0, -3.0], [0.02, 0.05, 0.01, 0.01, 0.01])
    exact = NormalDist().cdf((0.50 - 0.48) / math.hypot(0.02, 0.05))
    assert p[0] == pytest.approx(exact, abs=1e-15)
    assert p[1] == pytest.approx(1 - exact, abs=1e-15)
    assert np.all(p[2:] == 0.0)


def test_lints_many_arms_match_quadrature_and_ties_split():
    assert np.all(_ts([0.1] * 6, [0.2] * 6) == 1.0 / 6)  # identical arms share one evaluation
    assert np.array_equal(_ts([0.3, 0.3, 0.1], [0.0, 0.0, 0.0]), [0.5, 0.5, 0.0])
    # three arms with equal widths: 16-node Gauss–Hermite is accurate to ~1e-9 here
    rng = np.random.default_rng(0)
    m, s = np.array([0.0, 0.1, 0.05]), np.array([0.1, 0.1, 0.1])
    draws = rng.normal(m, s, size=(400_000, 3)).argmax(axis=1)
    mc = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(_ts(m, s), mc, atol=4e-3)


def test_phi_table_matches_erfc_and_exp():
    z = np.linspace(-normal.PHI_TAB_Z, normal.PHI_TAB_Z, 40_001)
    got = np.array([normal.phi_pair(v) for v in z])
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in z])
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    assert np.abs(got[:, 0] - cdf).max() <= 5e-16
    assert np.abs(got[:, 1] - pdf).max() <= 5e-16
    assert normal.phi_pair(-9.0) == (0.0, 0.0) and normal.phi_pair(9.0) == (1.0, 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_lints_grid_probabilities_within_1e10_of_a_fine_reference(seed):
    """3–10 competing arms, widths differing up to 100×, means within a few widths: the
    shared-grid probabilities are within 1e-10 of a 16×-finer erfc-based trapezoid rule (the
    old 16-node Gauss–Hermite rule is off by up to ~1e-2 on such configurations)."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(25):
        c = int(rng.integers(3, 11))
        s = 0.01 * np.exp(rng.uniform(0, math.log(100.0), c))
        m = rng.normal(scale=2.0 * s.max(), size=c)
        got = _ts(m, s)
        kept = got > 0
        ref = _reference_probs(m[kept], s[kept])
        worst = max(worst, np.abs(got[kept] - ref / ref.sum()).max())
        assert abs(got.sum() - 1.0) < 1e-12
    assert worst < 1e-10, worst


@pytest.mark.parametrize("seed", range(4))
def test_lints_win_bounds_hold_against_the_reference(seed):
    """Π_j P(X_a > X_j) ≤ π_a ≤ min_j P(X_a > X_j), checked against the fine reference on
    3–10 arms with widths differing up to 100×; and the bounds are not vacuous."""
    rng = np.random.default_rng(100 + seed)
    gaps = []
    for _ in range(25):
        c = int(rng.integers(3, 11))
        s = 0.01 * np.exp(rng.uniform(0, math.log(100.0), c))
        m = rng.normal(scale=2.0 * s.max(), size=c)
        ref = _reference_probs(m, s)
        ref = ref / ref.sum()
        for a in range(c):
            lower, upper = kern.ts_win_bounds(m, s, a)
            assert lower - 1e-12 <= ref[a] <= upper + 1e-12
            gaps.append(upper - lower)
    assert np.median(gaps) < 0.5
    assert kern.ts_win_bounds(np.zeros(3), np.zeros(3), 0) == (0.0, 1.0)


def test_lints_replay_from_bounds_decides_most_events_and_changes_nothing():
    """On the benchmark's problem (uniform logging over 10 arms, 20k events) most events are
    decided from the bounds, with the acceptances and final state of the exact path."""
    spec, ctx, potential, _ = problem(20_000, seed=3)
    rng = np.random.default_rng(4)
    n, K = potential.shape
    logged = rng.integers(0, K, n)
    rewards = potential[np.arange(n), logged]
    mu = np.full(n, 1.0 / K)
    u = rng.random(n)
    out = {}
    for need_pi in (True, False):
        pol = make_policy("lints").reset(spec, 0)
        out[need_pi] = pol.replay(ctx, logged, rewards, mu, u, 1.0 / K, need_pi=need_pi), pol
    (acc_exact, pi_exact), exact = out[True]
    (acc_fast, pi_fast), fast = out[False]
    np.testing.assert_array_equal(acc_fast, acc_exact)
    np.testing.assert_array_equal(fast.A_inv_, exact.A_inv_)
    np.testing.assert_array_equal(fast.b_, exact.b_)
    assert not np.isnan(pi_exact).any()
    skipped = np.isnan(pi_fast)
    assert skipped.mean() > 0.5
    np.testing.assert_array_equal(pi_fast[~skipped], pi_exact[~skipped])
