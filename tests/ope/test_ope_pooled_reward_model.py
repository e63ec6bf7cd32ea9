"""Pooled logistic reward model over (context, variant) pairs, and catalog variant features.

The checks compare fitted probabilities with the known truth of the data-generating model (or
of the simulator), not with one realisation of the rewards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from bandits.data import LoggedData, load_log
from bandits.offline.evaluate import contexts_of, true_q
from bandits.ope import (
    DR,
    LogisticRewardModel,
    PooledLogisticRewardModel,
    RidgeRewardModel,
    cross_fit,
)
from bandits.ope.reward_models import action_feature_matrix
from bandits.policies import make_policy
from bandits.simulate import (
    AudienceSettings,
    Environment,
    default_feature_schema,
    run_online,
)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class PooledTruth:
    """A logistic truth of exactly the pooled form::

    eta(x, k) = b0 + u_k + a_k' beta + x' gamma + x' Gamma a_k
    """

    n_actions: int = 8
    d: int = 4
    m: int = 3
    b0: float = -1.0
    u_sd: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 99])
        self.action_features = rng.normal(size=(self.n_actions, self.m))
        self.u = rng.normal(scale=self.u_sd, size=self.n_actions)
        self.beta = rng.normal(scale=0.5, size=self.m)
        self.gamma = rng.normal(scale=0.5, size=self.d)
        self.interactions = rng.normal(scale=0.3, size=(self.d, self.m))

    def q(self, x: np.ndarray) -> np.ndarray:
        """True success probabilities, shape (n, K)."""
        a = self.action_features
        eta = self.b0 + self.u + a @ self.beta + (x @ self.gamma)[:, None]
        return _sigmoid(eta + x @ self.interactions @ a.T)

    def sample(
        self, rng: np.random.Generator, n: int, action_probs: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x`` (n, d), ``action`` (n,) from ``action_probs`` (uniform if None), ``reward``."""
        x = rng.normal(size=(n, self.d))
        k = self.n_actions
        p = np.full(k, 1.0 / k) if action_probs is None else action_probs
        action = rng.choice(k, size=n, p=p)
        reward = (rng.random(n) < self.q(x)[np.arange(n), action]).astype(np.float64)
        return x, action, reward


# -- correctness of the fit ----------------------------------------------------------------------


def explicit_design(
    x: np.ndarray, action: np.ndarray, feats: np.ndarray, slopes: bool, x_mean: np.ndarray
) -> np.ndarray:
    """The pooled model's design matrix row by row, as the docstring states: columns
    [1, e_k, a_k, x, vec(x a_k'), x (x) e_k] with x centred at ``x_mean`` and a at its mean
    over the variants."""
    k = feats.shape[0]
    xc = x - x_mean
    ac = (feats - feats.mean(axis=0))[action]
    onehot = np.eye(k)[action]
    cols = [np.ones((x.shape[0], 1)), onehot, ac, xc, np.einsum("nd,nm->ndm", xc, ac)]
    if slopes:
        cols.append(np.einsum("nk,nd->nkd", onehot, xc))
    return np.hstack([c.reshape(x.shape[0], -1) for c in cols])


@pytest.mark.parametrize("slopes", [True, False])
def test_solution_is_the_stationary_point_of_the_documented_objective(slopes: bool) -> None:
    rng = np.random.default_rng(3)
    n, d, k, m = 500, 3, 5, 2
    x = rng.normal(size=(n, d))
    action = rng.integers(0, k - 1, n)  # action k - 1 never logged
    feats = rng.normal(size=(k, m))
    reward = _sigmoid(rng.normal(size=n))  # fractional rewards are allowed
    alpha, ia, pa, ua = 0.7, 2.0, 5.0, 0.3
    model = PooledLogisticRewardModel(
        action_features=feats,
        alpha=alpha,
        intercept_alpha=ua,
        per_action_alpha=pa if slopes else None,
        interaction_alpha=ia,
        tol=1e-12,
    ).fit(x, action, reward, k)
    assert model.converged_
    theta = np.concatenate(
        [
            [model.pooled_intercept_],
            model.action_intercepts_,
            model.action_feature_coef_,
            model.context_coef_,
            model.interaction_coef_.ravel(),
            *([model.per_action_coef_.ravel()] if slopes else []),
        ]
    )
    np.testing.assert_allclose(model.x_mean_, x.mean(axis=0))
    z = explicit_design(x, action, feats, slopes, x.mean(axis=0))
    parts = [np.full(1, 1e-6), np.full(k, ua), np.full(m + d, alpha), np.full(d * m, ia)]
    penalty = np.concatenate([*parts, np.full(k * d if slopes else 0, pa)])
    grad = z.T @ (_sigmoid(z @ theta) - reward) + penalty * theta
    np.testing.assert_allclose(grad, 0.0, atol=1e-8)
    # prediction = the same linear predictor on new contexts, as one matrix product
    x_new = rng.normal(size=(40, d))
    q = model.predict(x_new)
    np.testing.assert_allclose(q, _sigmoid(x_new @ model.coef_.T + model.intercept_), rtol=1e-12)
    eta_new = np.stack(
        [
            explicit_design(x_new, np.full(40, j), feats, slopes, x.mean(axis=0)) @ theta
            for j in range(k)
        ],
        axis=1,
    )
    np.testing.assert_allclose(q, _sigmoid(eta_new), rtol=1e-9)
    assert not slopes or np.any(model.per_action_coef_ != 0)
    np.testing.assert_array_equal(model.action_counts_, np.bincount(action, minlength=k))


def test_recovers_a_pooled_logistic_truth() -> None:
    """Fitted probabilities approach the truth, at the parametric rate (10x the rows, about
    a third of the error)."""
    truth = PooledTruth()
    rng = np.random.default_rng(1)
    x_test = rng.normal(size=(5000, truth.d))
    q_star = truth.q(x_test)
    errors = []
    for n in (6000, 60_000):
        x, action, reward = truth.sample(rng, n)
        model = PooledLogisticRewardModel(action_features=truth.action_features)
        model.fit(x, action, reward, truth.n_actions)
        assert model.converged_
        q = model.predict(x_test)
        assert q.shape == (5000, truth.n_actions)
        assert np.all((q > 0) & (q < 1))
        errors.append(np.abs(q - q_star).mean())
    assert errors[1] < 0.015
    assert np.abs(q - q_star).max() < 0.15
    assert errors[1] < 0.5 * errors[0]


def test_rare_variant_borrows_strength_from_the_others() -> None:
    """Variant 0 is shown in ~10 of 8000 rows: the disjoint model has 10 rows for its 5
    coefficients, the pooled model predicts it mostly from its features."""
    k = 8
    probs = np.full(k, (1.0 - 10 / 8000) / (k - 1))
    probs[0] = 10 / 8000
    errors: dict[str, list[float]] = {"pooled": [], "disjoint": [], "shrunk": []}
    for seed in range(6):
        truth = PooledTruth(n_actions=k, seed=seed)
        rng = np.random.default_rng(seed)
        x, action, reward = truth.sample(rng, 8000, probs)
        x_test = rng.normal(size=(4000, truth.d))
        q0 = truth.q(x_test)[:, 0]
        feats = truth.action_features
        models: dict[str, PooledLogisticRewardModel | LogisticRewardModel] = {
            "pooled": PooledLogisticRewardModel(action_features=feats),
            "disjoint": LogisticRewardModel(),
            "shrunk": PooledLogisticRewardModel(
                action_features=feats, intercept_alpha=100.0, per_action_alpha=None
            ),
        }
        for name, model in models.items():
            q = model.fit(x, action, reward, k).predict(x_test)[:, 0]
            errors[name].append(np.abs(q - q0).mean())
    pooled_err, disjoint_err = np.array(errors["pooled"]), np.array(errors["disjoint"])
    assert pooled_err.mean() < 0.5 * disjoint_err.mean(), errors
    assert np.all(pooled_err < disjoint_err), errors
    # the truth has almost no variant-specific intercepts: shrinking them harder helps more
    assert np.mean(errors["shrunk"]) < 0.5 * pooled_err.mean(), errors


def test_rare_clicks_with_many_variants() -> None:
    """0.4-0.5% click rate, 80 variants, 10k rows (~43 clicks, most variants have none)."""
    k, n = 80, 10_000
    truth = PooledTruth(n_actions=k, d=6, m=5, b0=-5.8, seed=4)
    truth.beta *= 0.4
    truth.gamma *= 0.4
    truth.interactions *= 0.5
    rng = np.random.default_rng(5)
    x, action, reward = truth.sample(rng, n)
    assert 0.004 <= reward.mean() <= 0.005
    q_star = truth.q(x)
    disjoint = LogisticRewardModel().fit(x, action, reward, k).predict(x)
    disjoint_err = np.abs(disjoint - q_star).mean()
    for feats, max_rel_err in ((truth.action_features, 0.8), (None, 0.9)):
        model = PooledLogisticRewardModel(action_features=feats).fit(x, action, reward, k)
        assert model.converged_
        q = model.predict(x)
        assert np.all(np.isfinite(q)) and np.all((q > 0) & (q < 1))
        logged = q[np.arange(n), action]
        # the score equation of the (essentially unpenalised) pooled intercept
        assert abs(logged.mean() - reward.mean()) < 0.02 * reward.mean()
        assert abs(q.mean() - reward.mean()) < 0.2 * reward.mean()
        err = np.abs(q - q_star).mean()
        assert err < max_rel_err * q_star.mean()
        assert err < 0.8 * disjoint_err


def test_all_zero_rewards_fractional_rewards_and_one_row() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    action = rng.integers(0, 4, 300)
    feats = rng.normal(size=(4, 2))
    zero = PooledLogisticRewardModel(action_features=feats).fit(x, action, np.zeros(300), 4)
    q = zero.predict(x)
    assert np.all(np.isfinite(q)) and np.all(q > 0) and q.max() < 1e-3
    ones = PooledLogisticRewardModel(action_features=feats).fit(x, action, np.ones(300), 4)
    q = ones.predict(x)
    assert np.all(q < 1) and q.min() > 1 - 1e-3
    half = PooledLogisticRewardModel().fit(x, action, np.full(300, 0.25), 4)
    np.testing.assert_allclose(half.predict(x), 0.25, atol=1e-6)
    one = PooledLogisticRewardModel(action_features=feats).fit(x[:1], action[:1], [1.0], 4)
    q = one.predict(x)
    assert q.shape == (300, 4) and np.all(np.isfinite(q)) and np.all((q > 0) & (q < 1))


def test_extreme_contexts_stay_strictly_inside_the_unit_interval() -> None:
    truth = PooledTruth()
    rng = np.random.default_rng(2)
    x, action, reward = truth.sample(rng, 5000)
    model = PooledLogisticRewardModel(action_features=truth.action_features, alpha=1e-3)
    q = model.fit(x, action, reward, truth.n_actions).predict(np.vstack([x * 1e3, -x * 1e3]))
    assert np.all(q > 0) and np.all(q < 1)


def test_never_logged_variants_are_predicted_from_their_features() -> None:
    truth = PooledTruth(n_actions=18, seed=7, u_sd=0.0)
    rng = np.random.default_rng(7)
    probs = np.r_[np.full(16, 1 / 16), 0.0, 0.0]  # variants 16 and 17 never logged
    x, action, reward = truth.sample(rng, 30_000, probs)
    model = PooledLogisticRewardModel(action_features=truth.action_features)
    model.fit(x, action, reward, 18)
    assert model.action_counts_[16] == model.action_counts_[17] == 0
    x_test = rng.normal(size=(3000, truth.d))
    q, q_star = model.predict(x_test), truth.q(x_test)
    for k in (16, 17):
        assert np.all(np.isfinite(q[:, k])) and np.all((q[:, k] > 0) & (q[:, k] < 1))
        assert q[:, k].std() > 0.5 * q_star[:, k].std()  # varies with the context
        pooled_mean_err = np.abs(reward.mean() - q_star[:, k]).mean()
        assert np.abs(q[:, k] - q_star[:, k]).mean() < 0.3 * pooled_mean_err
    assert np.abs(q[:, 16] - q[:, 17]).mean() > 0.03  # different features, different predictions
    assert model.action_intercepts_[16] == model.action_intercepts_[17] == 0.0


def test_subsample_is_deterministic_in_the_seed() -> None:
    truth = PooledTruth()
    x, action, reward = truth.sample(np.random.default_rng(0), 3000)

    def fit(seed: int) -> PooledLogisticRewardModel:
        model = PooledLogisticRewardModel(
            action_features=truth.action_features, max_rows=1000, seed=seed
        )
        return model.fit(x, action, reward, truth.n_actions)

    a, b, c = fit(0), fit(0), fit(1)
    assert a.n_rows_fitted_ == 1000
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)
    np.testing.assert_array_equal(a.action_counts_, np.bincount(action, minlength=8))
    full = PooledLogisticRewardModel(max_rows=3000).fit(x, action, reward, 8)
    assert full.n_rows_fitted_ == 3000


def test_settings_round_trip() -> None:
    model = PooledLogisticRewardModel(alpha=2.0, per_action_alpha=None)
    params = model.get_params()
    assert params["alpha"] == 2.0 and params["per_action_alpha"] is None
    assert set(params) >= {"action_features", "intercept_alpha", "max_iter", "tol", "seed"}
    assert model.set_params(alpha=3.0).alpha == 3.0
    assert "PooledLogisticRewardModel(" in repr(model)


# -- errors ----------------------------------------------------------------------------------


def _one_line_error(fn: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)


def test_bad_input_gives_one_line_errors() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    action = rng.integers(0, 4, 50)
    reward = (rng.random(50) < 0.3).astype(float)
    feats = rng.normal(size=(4, 2))
    model = PooledLogisticRewardModel(action_features=feats)
    _one_line_error(lambda: model.predict(x), "not fitted")
    bad_reward = reward.copy()
    bad_reward[[3, 7]] = [1.5, -0.2]
    _one_line_error(lambda: model.fit(x, action, bad_reward, 4), r"\[0, 1\].*rows \[3, 7\]")
    _one_line_error(lambda: model.fit(x[:, 0], action, reward, 4), "X")
    _one_line_error(lambda: model.fit(x, action[:40], reward, 4), "same number of rows")
    _one_line_error(lambda: model.fit(x, action, reward[:, None], 4), "reward")
    _one_line_error(lambda: model.fit(x, action + 1, reward, 4), "action")
    _one_line_error(lambda: model.fit(x, action, reward, 5), "action_features has 4 rows")
    _one_line_error(
        lambda: PooledLogisticRewardModel(action_features=feats[0]).fit(x, action, reward, 4),
        "2-d",
    )
    nan_feats = feats.copy()
    nan_feats[2, 1] = np.nan
    _one_line_error(
        lambda: PooledLogisticRewardModel(action_features=nan_feats).fit(x, action, reward, 4),
        "finite",
    )
    settings: list[dict[str, object]] = [
        {"alpha": 0.0},
        {"intercept_alpha": -1.0},
        {"per_action_alpha": 0},
        {"interaction_alpha": "a"},
        {"alpha": True},
        {"max_iter": 0},
        {"tol": 0.0},
        {"max_rows": 0},
    ]
    for setting in settings:

        def fit_with(setting: dict[str, object] = setting) -> None:
            PooledLogisticRewardModel(**setting).fit(x, action, reward, 4)  # type: ignore[arg-type]

        _one_line_error(fit_with, next(iter(setting)))
    model.fit(x, action, reward, 4)
    _one_line_error(lambda: model.predict(x[:, :2]), "features")


# -- catalog features ------------------------------------------------------------------------


def test_action_feature_matrix_of_the_default_catalog() -> None:
    frame = Environment(AudienceSettings(), 0).catalog.to_frame()
    feats = action_feature_matrix(frame)
    assert feats.shape[0] == 12 == frame.height
    assert feats.dtype == np.float64 and np.all(np.isfinite(feats))
    assert feats.shape[1] >= 8
    assert np.all(np.ptp(feats, axis=0) > 0)  # no constant columns
    # distinct variants get distinct feature rows
    assert len({tuple(row) for row in feats.round(9).tolist()}) == 12


def test_action_feature_matrix_column_rules() -> None:
    frame = pl.DataFrame(
        {
            "variant_id": ["a", "b", "c", "d"],
            "tone": ["urgent", "friendly", "urgent", None],
            "category": pl.Series(["x", "y", "x", "x"], dtype=pl.Categorical),
            "retarget": [True, False, None, False],
            "discount": [0, 10, 20, 30],
            "constant": [5.0, 5.0, 5.0, 5.0],
            "always": [True, True, True, True],
            "channels": [["email"], ["sms"], [], ["push"]],
        }
    )
    feats = action_feature_matrix(frame)
    # tone: friendly / urgent / missing; category: x / y; retarget; discount
    assert feats.shape == (4, 7)
    np.testing.assert_array_equal(feats[:, :3], [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(feats[:, 3:5], [[1, 0], [0, 1], [1, 0], [1, 0]])
    np.testing.assert_allclose(feats[:, 5], [1, 0, 1 / 3, 0])
    np.testing.assert_allclose(feats[:, 6], (np.arange(4) - 1.5) / np.arange(4).std())
    assert action_feature_matrix(frame.select("variant_id", "constant")).shape == (4, 0)
    _one_line_error(lambda: action_feature_matrix(frame.drop("variant_id")), "variant_id")
    _one_line_error(lambda: action_feature_matrix(frame.head(0)), "no variants")
    dup = frame.with_columns(pl.Series("variant_id", ["a", "a", "c", "d"]))
    _one_line_error(lambda: action_feature_matrix(dup), "unique")


# -- on the simulator: DR with cross-fitted pooled predictions -------------------------------------


def simulated_log(rounds: int, seed: int) -> tuple[LoggedData, np.ndarray]:
    """A uniform-logging log from the simulator (with ground truth) and its catalog's
    variant features."""
    env = Environment(AudienceSettings(), np.random.SeedSequence([seed, 0]))
    res = run_online(
        env,
        make_policy("uniform", {}),
        rounds,
        np.random.SeedSequence([seed, 1]),
        eval_rounds=0,
    )
    frame = env.catalog.to_frame()
    data = load_log(res.log, catalog=frame, features=default_feature_schema())
    return data, action_feature_matrix(frame)


def test_dr_with_cross_fitted_pooled_model_on_simulated_logs() -> None:
    """Over 10 simulated uniform logs: the DR interval for a fixed target (always variant 3)
    covers the true value on most logs, and the pooled predictions are closer to the true
    expected rewards than the ridge model's."""
    target, reps = 3, 10
    covered, mae_pooled, mae_ridge = 0, [], []
    for seed in range(reps):
        data, feats = simulated_log(4000, 300 + seed)
        x = contexts_of(data).X
        q_star = true_q(data)
        assert q_star is not None
        args = (x, data.action, data.reward, data.n_actions)

        def pooled(feats: np.ndarray = feats) -> PooledLogisticRewardModel:
            return PooledLogisticRewardModel(action_features=feats)

        q = cross_fit(pooled, *args, n_folds=2, seed=0)
        q_ridge = cross_fit(RidgeRewardModel, *args, n_folds=2, seed=0)
        assert np.all((q > 0) & (q < 1))
        pi = np.zeros((data.n, data.n_actions))
        pi[:, target] = 1.0
        est = DR().estimate(
            reward=data.reward,
            action=data.action,
            propensity=data.propensity,
            target_probs=pi,
            reward_hat=q,
        )
        covered += est.ci_low <= q_star[:, target].mean() <= est.ci_high
        mae_pooled.append(np.abs(q - q_star).mean())
        mae_ridge.append(np.abs(q_ridge - q_star).mean())
    assert covered >= 8, covered  # P(<= 7 of 10 | 0.95) ~ 1%
    assert np.mean(mae_pooled) < 0.9 * np.mean(mae_ridge), (mae_pooled, mae_ridge)
    assert np.sum(np.array(mae_pooled) < np.array(mae_ridge)) >= 9, (mae_pooled, mae_ridge)
