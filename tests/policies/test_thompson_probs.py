"""Beta Thompson sampling (``beta_ts``, ``segment_ts``): win probabilities by quadrature.

They match an independent reference integral and a large Monte-Carlo estimate, no arm is
ever given probability exactly 0, decisions are drawn from exactly the probabilities they
log, and the compiled replay of the context-free bandits equals the reference replay.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from bandits.data import load_log
from bandits.offline.replay import replay
from bandits.policies import make_policy
from bandits.policies.base import sample_from
from bandits.policies.kernels import beta as kern
from bandits.simulate import AudienceSettings, Environment, problem_spec, run_online


def _probs(alpha, beta) -> np.ndarray:
    out = np.empty(len(alpha))
    kern.beta_win_probs(np.asarray(alpha, float), np.asarray(beta, float), out)
    return out


def _reference(alpha, beta) -> np.ndarray:
    """``∫ f_k Π_{j≠k} F_j`` with SciPy's Beta density and incomplete beta function and
    adaptive quadrature, split at every posterior's mean ± 3 and 6 sds."""
    alpha, beta = np.asarray(alpha, float), np.asarray(beta, float)
    mean = alpha / (alpha + beta)
    sd = np.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
    points = np.clip(np.concatenate([mean + z * sd for z in (-6, -3, 0, 3, 6)]), 1e-12, 1 - 1e-12)
    out = []
    for k in range(len(alpha)):

        def integrand(x, k=k):
            value = stats.beta.pdf(x, alpha[k], beta[k])
            for j in range(len(alpha)):
                if j != k:
                    value *= stats.beta.cdf(x, alpha[j], beta[j])
            return value

        value, _ = integrate.quad(
            integrand, 0, 1, points=np.unique(points), limit=500, epsabs=1e-14, epsrel=1e-12
        )
        out.append(value)
    return np.asarray(out)


def _posteriors(seed: int, k: int, max_pulls: int):
    rng = np.random.default_rng(seed)
    n = rng.integers(0, max_pulls, k).astype(float)
    s = rng.binomial(n.astype(int), rng.uniform(0.02, 0.4, k)).astype(float)
    return 1 + s, 1 + n - s


STATES = {
    "uniform priors": (np.ones(5), np.ones(5)),
    "two arms": ([3.0, 5.0], [9.0, 7.0]),
    "one leader, narrow": ([6376.0, 74.0, 22.0, 4.0], [12200.0, 207.0, 86.0, 33.0]),
    "close leaders of unequal width": ([1e5, 1e5 + 300, 50.0, 1.0], [4e5, 4e5, 150.0, 1.0]),
    "random, 7 arms": _posteriors(1, 7, 3000),
    "random, 5 arms, few pulls": _posteriors(2, 5, 40),
}


@pytest.mark.parametrize("state", list(STATES))
def test_win_probabilities_match_a_reference_integral(state):
    alpha, beta = STATES[state]
    got, ref = _probs(alpha, beta), _reference(alpha, beta)
    np.testing.assert_allclose(got.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
    big = ref > 1e-9  # and relatively where the probability is not negligible
    np.testing.assert_allclose(got[big], ref[big], rtol=1e-6)


def test_win_probabilities_match_a_large_monte_carlo_estimate(small_spec, small_env):
    """The state segment_ts reaches on the small audience, against 1M joint posterior draws
    per segment: every arm within 5 binomial standard errors."""
    policy = make_policy("segment_ts").reset(small_spec, 0)
    for _ in range(5):
        day = small_env.next_day(200)
        policy.play(small_spec.contexts(day.frame), day.potential_reward)
    rng = np.random.default_rng(0)
    draws = 1_000_000
    for g in range(policy.counts_.shape[0]):
        alpha = 1.0 + policy.sums_[g]
        beta = 1.0 + policy.counts_[g] - policy.sums_[g]
        p = _probs(alpha, beta)
        winners = rng.beta(alpha, beta, size=(draws, alpha.size)).argmax(axis=1)
        mc = np.bincount(winners, minlength=alpha.size) / draws
        tol = 5 * np.sqrt(p * (1 - p) / draws) + 1e-6
        assert np.all(np.abs(mc - p) <= tol), (g, p, mc)


def test_identical_posteriors_share_equally():
    for k in (2, 3, 12):
        np.testing.assert_allclose(_probs(np.full(k, 30.0), np.full(k, 70.0)), 1.0 / k, rtol=1e-12)


@pytest.mark.parametrize(
    ("alpha", "beta"),
    [
        ([1e8, 2e7, 3.0], [4e8, 1e8, 3.0]),  # very concentrated posteriors next to a wide one
        ([0.5, 0.5, 10.5], [0.5, 40.5, 3.5]),  # Jeffreys prior: unbounded densities at 0 and 1
        (np.full(50, 1.0), np.linspace(1.0, 500.0, 50)),  # many arms
        ([2.0, 30_000.0], [10_000.0, 70_000.0]),  # a hopeless arm: underflows below 1e-300
    ],
)
def test_extreme_posteriors_give_positive_probabilities_summing_to_one(alpha, beta):
    p = _probs(alpha, beta)
    assert np.all(np.isfinite(p)) and np.all(p >= kern.PROB_FLOOR)
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-12)


@pytest.mark.parametrize("name", ["beta_ts", "segment_ts"])
def test_no_arm_gets_probability_zero_on_a_simulated_run(name):
    """20,000 rounds on the default audience: every probability of every decision is
    positive — the Monte-Carlo estimate (100 draws) gave exactly 0 to 64–79% of them."""
    env = Environment(AudienceSettings(), 3)
    spec = problem_spec(env)
    policy = make_policy(name).reset(spec, 3)
    smallest = 1.0
    for _ in range(10):
        day = env.next_day(2000)
        dec = policy.play(spec.contexts(day.frame), day.potential_reward)
        smallest = min(smallest, float(dec.probs.min()))
    assert smallest >= 1e-6, smallest


@pytest.mark.parametrize("name", ["beta_ts", "segment_ts"])
@pytest.mark.parametrize("update_every", [1, 5])
def test_decisions_are_drawn_from_the_probabilities_they_log(
    name, update_every, small_spec, small_env
):
    """The compiled loop's probabilities are the quadrature of the state at decision time,
    its actions the inverse-CDF draws from them with the policy's uniforms, and each
    logged propensity is the drawn action's probability."""
    policy = make_policy(name, {"update_every": update_every}).reset(small_spec, 4)
    twin = make_policy(name, {"update_every": update_every}).reset(small_spec, 4)
    for _ in range(3):
        day = small_env.next_day(200)
        ctx = small_spec.contexts(day.frame)
        dec = policy.play(ctx, day.potential_reward)
        uniforms = twin.rng_.random(len(ctx))
        groups = twin._groups(ctx)
        rows = np.arange(len(ctx))
        np.testing.assert_array_equal(dec.propensities, dec.probs[rows, dec.actions])
        for start in range(0, len(ctx), update_every):
            stop = min(start + update_every, len(ctx))
            for t in range(start, stop):
                g = groups[t]
                alpha = 1.0 + twin.sums_[g]
                beta = 1.0 + twin.counts_[g] - twin.sums_[g]
                np.testing.assert_array_equal(dec.probs[t], _probs(alpha, beta))
            a, p = sample_from(dec.probs[start:stop], uniforms[start:stop])
            np.testing.assert_array_equal(a, dec.actions[start:stop])
            np.testing.assert_array_equal(p, dec.propensities[start:stop])
            r = day.potential_reward[np.arange(start, stop), a]
            twin.update(ctx.slice(start, stop), a, r, p)


@pytest.mark.parametrize("name", ["beta_ts", "segment_ts", "epsilon_greedy", "ucb1"])
def test_compiled_replay_equals_the_reference_replay(name):
    """The compiled ``replay`` hook (one call) makes the acceptances of the reference loop of
    :func:`bandits.offline.replay.replay` and ends in the same state."""
    settings = AudienceSettings(n_users=1000, impressions_per_day=600)
    env = Environment(settings, 12)
    res = run_online(env, make_policy("uniform"), 6000, 13, eval_rounds=0)
    data = load_log(res.log, catalog=env.catalog.to_frame(), features=problem_spec(env).features)
    spec = data.problem_spec()
    eps = {"epsilon": 0.1} if name == "epsilon_greedy" else {}
    fast = make_policy(name, eps).reset(spec, 1)
    ref = make_policy(name, eps).reset(spec, 1)
    a = replay(data, fast, seed=5, min_accepted=1)
    b = replay(data, ref, seed=5, min_accepted=1, compiled=False)
    np.testing.assert_array_equal(a.accepted, b.accepted)
    np.testing.assert_array_equal(fast.counts_, ref.counts_)
    np.testing.assert_allclose(fast.sums_, ref.sums_, rtol=0, atol=1e-12)
    assert fast.n_updates_ == ref.n_updates_ == a.n_accepted
    assert (a.value, a.ci_low, a.ci_high) == (b.value, b.ci_low, b.ci_high)
