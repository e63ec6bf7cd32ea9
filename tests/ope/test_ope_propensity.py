"""Estimated logging policies, deterministic loggers and logged-propensity checks, against the
simulator's exact logging distribution (``action_probs``) and true values."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bandits.data import LoggedData, load_log
from bandits.offline.evaluate import contexts_of, true_q
from bandits.ope import IPS
from bandits.ope.propensity import (
    check_logged_propensities,
    detect_deterministic,
    estimate_logging_policy,
    fit_logging_policy,
    fit_logging_policy_on_log,
)
from bandits.policies import make_policy
from bandits.simulate import AudienceSettings, Environment, default_feature_schema, run_online

SMALL = AudienceSettings(n_users=3000, impressions_per_day=1000)
RULE_COLUMNS = {"channel", "last_viewed_category", "days_since_view"}  # Retargeting reads these


def simulated(
    rounds: int, seed: int, logger: str = "uniform", *, drop_propensity: bool = False, **settings
) -> LoggedData:
    """A simulated log (exact ``propensity`` / ``action_probs``), or the same log without
    them, loaded with ``propensity="auto"`` (estimated)."""
    frame, catalog = simulated_frame(rounds, seed, logger, **settings)
    if drop_propensity:
        frame = frame.drop("propensity", "action_probs")
    return load_log(frame, catalog=catalog, features=default_feature_schema(), seed=seed)


def simulated_frame(
    rounds: int, seed: int, logger: str = "uniform", **settings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The simulator's decision log and catalog."""
    env = Environment(SMALL, np.random.SeedSequence([seed, 0]))
    res = run_online(
        env, make_policy(logger, settings), rounds, np.random.SeedSequence([seed, 1]), eval_rounds=0
    )
    return res.log, env.catalog.to_frame()


def estimated(data: LoggedData, seed: int = 0) -> np.ndarray:
    """``(n, K)`` logging policy estimated as load_log does (cells + model choice)."""
    X = contexts_of(data).X
    fit = fit_logging_policy_on_log(
        data.frame, X, data.action, data.n_actions, data.context_columns, seed=seed
    )
    return fit.probs


# ---------------------------------------------------------------- estimate_logging_policy


@pytest.mark.parametrize(
    ("logger", "settings", "max_mae"),
    [("uniform", {}, 0.008), ("retargeting", {"epsilon": 0.3}, 0.008)],
)
def test_estimated_policy_is_close_to_the_exact_logging_distribution(logger, settings, max_mae):
    for seed in range(3):
        data = simulated(6000, 10 + seed, logger, **settings)
        mu = estimated(data, seed)
        assert mu.shape == (data.n, data.n_actions)
        np.testing.assert_allclose(mu.sum(axis=1), 1.0, atol=1e-12)
        mae = np.abs(mu - data.logging_probs).mean()
        assert mae < max_mae, (logger, seed, mae)


def test_linear_model_alone_is_sklearns_multinomial_logistic_regression() -> None:
    """Without cells and cross-fitting the model is LogisticRegression(C=1/alpha) on the
    standardised features (sklearn only checks our objective here)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n, k = 3000, 4
    X = rng.normal(size=(n, 4)) * [1.0, 2.0, 0.5, 3.0] + 1.0
    z = X @ rng.normal(size=(4, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    action = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    for alpha in (1.0, 30.0):
        ours = estimate_logging_policy(X, action, k, folds=1, alpha=alpha, floor=0.0)
        sk = LogisticRegression(C=1 / alpha, tol=1e-10, max_iter=10_000).fit(Xs, action)
        np.testing.assert_allclose(ours, sk.predict_proba(Xs), atol=5e-4)


def test_unlogged_actions_get_zero_and_logged_ones_the_floor() -> None:
    rng = np.random.default_rng(1)
    n, k = 2000, 6
    X = rng.normal(size=(n, 3))
    action = np.where(X[:, 0] > 0, 1, 4)  # only actions 1 and 4, a clean threshold
    action[:3] = 2  # action 2: three rows
    mu = estimate_logging_policy(X, action, k, seed=3)
    assert mu.shape == (n, k)
    assert np.all(mu[:, [0, 3, 5]] == 0.0)
    assert mu[:, [1, 2, 4]].min() >= 1e-6 * 0.99
    np.testing.assert_allclose(mu.sum(axis=1), 1.0, atol=1e-12)
    logged = mu[np.arange(n), action]
    assert np.median(logged[3:]) > 0.9
    # one action only: probability one, no fit
    np.testing.assert_array_equal(estimate_logging_policy(X, np.full(n, 2), k)[:, 2], 1.0)


def test_cross_fitting_and_seed() -> None:
    """Same seed, same estimate; the estimate of a row does not use the row's own action."""
    rng = np.random.default_rng(2)
    n, k = 500, 3
    X = rng.normal(size=(n, 2))
    action = rng.integers(0, k, n)
    a = estimate_logging_policy(X, action, k, seed=5)
    np.testing.assert_array_equal(a, estimate_logging_policy(X, action, k, seed=5))
    flipped = action.copy()
    flipped[0] = (action[0] + 1) % k
    b = estimate_logging_policy(X, flipped, k, seed=5)
    np.testing.assert_allclose(a[0], b[0], atol=1e-4)  # row 0's own fold is not fitted on it
    assert np.abs(a[1:] - b[1:]).max() > 0  # other folds see the change


def test_bad_arguments_raise() -> None:
    X, action = np.zeros((10, 2)), np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="rows"):
        estimate_logging_policy(X[:5], action, 2)
    with pytest.raises(ValueError, match="folds"):
        estimate_logging_policy(X, action, 2, folds=11)
    with pytest.raises(ValueError, match="alpha"):
        estimate_logging_policy(X, action, 2, alpha=0.0)
    with pytest.raises(ValueError, match=r"action must be in \[0, 2\)"):
        estimate_logging_policy(X, action + 5, 2)
    with pytest.raises(ValueError, match="cells"):
        fit_logging_policy(X, action, 2, cells=np.zeros(3, dtype=int))


# ---------------------------------------------------------------- deterministic loggers


@pytest.mark.parametrize("seed", [0, 1])
def test_rule_engine_is_detected_and_its_action_estimated_near_one(seed: int) -> None:
    data = simulated(6000, 20 + seed, "retargeting")  # epsilon 0: a rule engine
    report = detect_deterministic(data.frame, data.action, data.context_columns)
    assert report.is_deterministic, report.message
    assert report.share >= 0.95
    assert set(report.columns) <= RULE_COLUMNS
    assert {"last_viewed_category", "days_since_view"} <= set(report.columns)
    assert "looks deterministic given" in report.message
    assert all(c in report.message for c in report.columns)
    assert report.table["share"][0] == pytest.approx(report.share)
    # the threshold the rule uses (max_days_since_view = 7) is found
    split = [c for c in report.cells if c.name == "days_since_view"]
    assert split and split[0].kind == "split" and split[0].cut == 7

    mu = estimated(data, seed)
    logged = mu[np.arange(data.n), data.action]
    assert np.mean(logged >= 0.9) >= 0.95
    # the linear model alone (no cells) still puts >= 0.9 on most rows
    plain = estimate_logging_policy(contexts_of(data).X, data.action, data.n_actions, seed=seed)
    assert np.mean(plain[np.arange(data.n), data.action] >= 0.9) >= 0.8


def test_random_loggers_are_not_reported_deterministic() -> None:
    for logger, settings in (("uniform", {}), ("retargeting", {"epsilon": 0.3})):
        data = simulated(6000, 30, logger, **settings)
        report = detect_deterministic(data.frame, data.action, data.context_columns)
        assert not report.is_deterministic, report.message
        assert report.share < 0.8
        assert report.message.startswith("the log does not look deterministic")


def test_detection_rules_on_a_small_frame() -> None:
    """Strings, booleans, a float threshold and an id column; constant actions."""
    rng = np.random.default_rng(4)
    n = 4000
    frame = pl.DataFrame(
        {
            "segment": rng.choice(["a", "b", "c"], n),
            "vip": rng.random(n) < 0.3,
            "score": rng.normal(size=n),
            "user_id": [f"u{i}" for i in range(n)],  # an id: skipped
        }
    )
    seg = frame["segment"].to_numpy()
    action = np.where(frame["vip"].to_numpy(), 2, np.where(seg == "a", 0, 1))
    report = detect_deterministic(frame, action, frame.columns)
    assert set(report.columns) == {"segment", "vip"} and report.share == pytest.approx(1.0)

    action = np.where(frame["score"].to_numpy() <= 0.5, 3, 1)
    report = detect_deterministic(frame, action, frame.columns, max_columns=1)
    assert report.columns == ("score",) and report.cells[0].kind == "split"
    assert report.cells[0].cut == pytest.approx(0.5, abs=0.01)
    assert "given score ≤ 0.49" in report.message and report.share > 0.999

    report = detect_deterministic(frame, np.full(n, 7), frame.columns)
    assert report.columns == () and report.is_deterministic
    assert "action 7" in report.message

    noisy = rng.integers(0, 4, n)
    report = detect_deterministic(frame, noisy, ["user_id"])
    assert report.columns == () and not report.is_deterministic


# ---------------------------------------------------------------- IPS with estimated propensities


def test_ips_with_estimated_propensities_covers_the_truth() -> None:
    """The propensity column is dropped from ε-greedy (0.3) retargeting logs and estimated by
    load_log; IPS 95% intervals still cover the true value of fixed targets on >= 90% of
    20 independent logs (18 of 20), or (the logger's own greedy rule, where IPS with the
    exact propensities covers about 92%: 37 of 40 logs) about as often as with the exact
    propensities."""
    targets = {
        "uniform": ("uniform", {}),
        "one variant": ("fixed", {"variant": "electronics_urgent_20off"}),
        "greedy rule": ("retargeting", {}),
    }
    hits = {name: {"logged": 0, "estimated": 0} for name in targets}
    reps = 20
    for seed in range(reps):
        frame, catalog = simulated_frame(4000, 100 + seed, "retargeting", epsilon=0.3)
        exact = load_log(frame, catalog=catalog, features=default_feature_schema())
        data = load_log(
            frame.drop("propensity", "action_probs"),
            catalog=catalog,
            features=default_feature_schema(),
            seed=seed,
        )
        assert data.propensity_source == "estimated" and exact.propensity_source == "logged"
        ctx, q = contexts_of(data), true_q(data)
        for name, (policy, settings) in targets.items():
            pi = make_policy(policy, settings).reset(data.problem_spec(), 0).action_probs(ctx)
            truth = float((pi * q).sum(axis=1).mean())
            for d in (exact, data):
                est = IPS().estimate(
                    reward=d.reward, action=d.action, propensity=d.propensity, target_probs=pi
                )
                hits[name][d.propensity_source] += est.ci_low <= truth <= est.ci_high
    for name in ("uniform", "one variant"):
        assert hits[name]["estimated"] >= 18, (name, hits[name])
    for name, h in hits.items():
        assert h["estimated"] >= h["logged"] - 1, (name, h)


# ---------------------------------------------------------------- checking logged propensities


def test_propensities_claiming_one_third_on_a_uniform_12_variant_log_are_flagged() -> None:
    data = simulated(12_000, 40)
    assert data.n_actions == 12
    mu = estimated(data)
    check = check_logged_propensities(data.action, np.full(data.n, 1 / 3), mu)
    assert not check.ok and check.failed == "too_large"
    assert check.message.startswith("column 'propensity': logged propensities are 4")
    assert "×" in check.message and "\n" not in check.message
    assert check.median_ratio == pytest.approx(4.0, rel=0.1)
    assert check.mass == pytest.approx(0.25, abs=0.02)
    assert check.table.height == 1  # one decile: every row claims 1/3

    small = check_logged_propensities(data.action, np.full(data.n, 1 / 48), mu)
    assert small.failed == "too_small" and "column 'propensity'" in small.message


@pytest.mark.parametrize(
    ("logger", "settings"), [("uniform", {}), ("retargeting", {"epsilon": 0.3})]
)
def test_correct_propensities_are_not_flagged(logger, settings) -> None:
    for seed in range(3):
        data = simulated(6000, 50 + seed, logger, **settings)
        check = check_logged_propensities(data.action, data.propensity, estimated(data, seed))
        assert check.ok, check.message
        assert check.message.startswith("column 'propensity': agrees")
        assert abs(check.mass - 1.0) < 0.05
        assert set(check.table.columns) >= {"decile", "n", "mean_logged", "mean_estimated"}
        assert check.table["n"].sum() == data.n


def test_deterministic_logger_with_propensity_one_is_not_flagged() -> None:
    data = simulated(6000, 60, "retargeting")
    check = check_logged_propensities(data.action, data.propensity, estimated(data))
    assert check.ok, check.message


def test_check_rejects_bad_input() -> None:
    mu = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match="same number of rows"):
        check_logged_propensities([0, 1, 0], [0.5] * 4, mu)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        check_logged_propensities([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.0], mu)
