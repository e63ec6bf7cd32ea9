"""Ground truth by simulation: unbiasedness, interval coverage, DM vs DR under misspecification.

The synthetic problem (``conftest.SyntheticProblem``) has a finite context population, so the
target policy's true value is computed exactly. Repeated logs are drawn in one vectorised batch
and evaluated log by log (a loop over logs, not rows). All seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import DM, DR, IPS, SNDR, SNIPS, DRos, RidgeRewardModel, SwitchDR, cross_fit

N_LOGS = 400
N_ROUNDS = 1000


def run(estimator, logs: list[dict], reward_hat=None) -> np.ndarray:
    """(n_logs, 3) array of (value, ci_low, ci_high)."""
    out = np.empty((len(logs), 3))
    for j, log in enumerate(logs):
        extra = {} if reward_hat is None else {"reward_hat": reward_hat(log)}
        e = estimator.estimate(
            reward=log["reward"],
            action=log["action"],
            propensity=log["propensity"],
            target_probs=log["target_probs"],
            **extra,
        )
        out[j] = e.value, e.ci_low, e.ci_high
    return out


def assert_unbiased(values: np.ndarray, truth: float, n_se: float = 4.0) -> None:
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - truth) <= n_se * se, (values.mean(), truth, se)


def coverage(results: np.ndarray, truth: float) -> float:
    return float(np.mean((results[:, 1] <= truth) & (truth <= results[:, 2])))


@pytest.fixture(scope="module")
def logs(problem) -> list[dict]:
    return problem.sample_many(np.random.default_rng(2), N_LOGS, N_ROUNDS)


@pytest.fixture(scope="module")
def wrong_model(problem) -> RidgeRewardModel:
    """Misspecified reward model: linear, and blind to feature x2 (fit on an independent log)."""
    train = problem.sample(np.random.default_rng(99), 20_000)
    return RidgeRewardModel(alpha=1.0).fit(
        train["x"][:, :2], train["action"], train["reward"], problem.n_actions
    )


def test_problem_is_sane(problem, logs) -> None:
    assert 0.0 < problem.true_value < 1.0
    np.testing.assert_allclose(logs[0]["logging_probs"].sum(axis=1), 1.0)
    # correct log: the mean importance weight has expectation exactly 1
    mean_weights = np.array(
        [
            IPS()
            .estimate(**{k: lg[k] for k in ("reward", "action", "propensity", "target_probs")})
            .diagnostics["mean_weight"]
            for lg in logs
        ]
    )
    assert_unbiased(mean_weights, 1.0)


@pytest.mark.parametrize("estimator", [IPS(), SNIPS()], ids=["ips", "snips"])
def test_ips_and_snips_unbiased_with_nominal_coverage(estimator, problem, logs) -> None:
    # SNIPS/SNDR are only consistent (bias O(1/n), ~1e-3 here), well inside the tolerance.
    res = run(estimator, logs)
    assert_unbiased(res[:, 0], problem.true_value)
    assert 0.92 <= coverage(res, problem.true_value) <= 0.98


@pytest.mark.parametrize(
    "estimator", [DR(), SNDR(), SwitchDR(lambda_=1e9), DRos(lambda_=1e9)], ids=lambda e: e.name
)
def test_dr_family_unbiased_with_wrong_model_and_correct_propensities(
    estimator, problem, logs, wrong_model
) -> None:
    res = run(estimator, logs, reward_hat=lambda lg: wrong_model.predict(lg["x"][:, :2]))
    assert_unbiased(res[:, 0], problem.true_value)
    assert 0.92 <= coverage(res, problem.true_value) <= 0.98


def test_dm_biased_with_wrong_model_while_dr_is_not(problem, logs, wrong_model) -> None:
    q_wrong = lambda lg: wrong_model.predict(lg["x"][:, :2])  # noqa: E731
    dm = run(DM(), logs, reward_hat=q_wrong)
    dr = run(DR(), logs, reward_hat=q_wrong)
    truth = problem.true_value
    dm_bias = dm[:, 0].mean() - truth
    dm_se = dm[:, 0].std(ddof=1) / np.sqrt(N_LOGS)
    assert abs(dm_bias) > 0.05  # a large, systematic error ...
    assert abs(dm_bias) > 20 * dm_se  # ... far beyond Monte Carlo noise
    assert coverage(dm, truth) < 0.05  # DM's interval ignores model bias
    assert_unbiased(dr[:, 0], truth)
    assert abs(dr[:, 0].mean() - truth) < abs(dm_bias) / 10


def test_dm_with_true_model_is_unbiased_and_covers(problem, logs) -> None:
    res = run(DM(), logs, reward_hat=lambda lg: lg["q_star"])
    assert_unbiased(res[:, 0], problem.true_value)
    assert 0.92 <= coverage(res, problem.true_value) <= 0.98


def test_cross_fitted_dr_is_approximately_unbiased(problem) -> None:
    logs = problem.sample_many(np.random.default_rng(7), 100, 1000)

    def q_cross(lg: dict) -> np.ndarray:
        return cross_fit(
            lambda: RidgeRewardModel(alpha=1.0),
            lg["x"],
            lg["action"],
            lg["reward"],
            problem.n_actions,
            n_folds=2,
            seed=0,
        )

    res = run(DR(), logs, reward_hat=q_cross)
    assert_unbiased(res[:, 0], problem.true_value)
    assert coverage(res, problem.true_value) >= 0.88


def test_clipped_ips_trades_bias_for_variance(problem, logs) -> None:
    plain = run(IPS(), logs[:200])[:, 0]
    clipped = run(IPS(clip=2.0), logs[:200])[:, 0]
    assert clipped.std() < plain.std()
    assert clipped.mean() < problem.true_value - 0.01  # non-negative rewards: biased down


@pytest.mark.parametrize("estimator_cls", [IPS, SNIPS, DR], ids=["ips", "snips", "dr"])
def test_bootstrap_interval_coverage(estimator_cls, problem, wrong_model) -> None:
    logs = problem.sample_many(np.random.default_rng(31), 100, 500)
    est = estimator_cls(interval="bootstrap", n_bootstrap=200, seed=0)
    q = (lambda lg: wrong_model.predict(lg["x"][:, :2])) if estimator_cls is DR else None
    res = run(est, logs, reward_hat=q)
    assert 0.86 <= coverage(res, problem.true_value) <= 1.0
    analytic = run(estimator_cls(), logs, reward_hat=q)
    widths = res[:, 2] - res[:, 1]
    analytic_widths = analytic[:, 2] - analytic[:, 1]
    assert np.median(widths / analytic_widths) == pytest.approx(1.0, abs=0.15)


def test_switch_and_shrinkage_reduce_variance_relative_to_dr(logs, wrong_model) -> None:
    q_wrong = lambda lg: wrong_model.predict(lg["x"][:, :2])  # noqa: E731
    subset = logs[:200]
    dr = run(DR(), subset, reward_hat=q_wrong)[:, 0]
    switch = run(SwitchDR(lambda_=3.0), subset, reward_hat=q_wrong)[:, 0]
    dros = run(DRos(lambda_=10.0), subset, reward_hat=q_wrong)[:, 0]
    assert switch.std() < dr.std()
    assert dros.std() < dr.std()
