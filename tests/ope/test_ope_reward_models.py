"""Per-action ridge / logistic reward models and cross-fitting."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import LogisticRewardModel, RidgeRewardModel, cross_fit


def linear_data(n: int = 3000, d: int = 3, k: int = 3, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    action = rng.integers(0, k, n)
    coef = rng.normal(size=(k, d))
    intercept = rng.normal(size=k)
    reward = np.einsum("nd,nd->n", x, coef[action]) + intercept[action]
    reward += noise * rng.normal(size=n)
    return x, action, reward, coef, intercept


def test_ridge_recovers_noise_free_linear_model_per_action() -> None:
    x, a, r, coef, intercept = linear_data()
    model = RidgeRewardModel(alpha=0.0).fit(x, a, r, n_actions=3)
    np.testing.assert_allclose(model.coef_, coef, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, intercept, atol=1e-10)
    q = model.predict(x)
    assert q.shape == (3000, 3)
    np.testing.assert_allclose(q[np.arange(3000), a], r, atol=1e-9)


def test_ridge_matches_closed_form_with_penalty() -> None:
    x, a, r, *_ = linear_data(n=500, noise=0.5)
    alpha = 7.0
    model = RidgeRewardModel(alpha=alpha).fit(x, a, r, 3)
    for k in range(3):
        xk, rk = x[a == k], r[a == k]
        xc, rc = xk - xk.mean(axis=0), rk - rk.mean()
        beta = np.linalg.solve(xc.T @ xc + alpha * np.eye(3), xc.T @ rc)
        np.testing.assert_allclose(model.coef_[k], beta, rtol=1e-10)
        np.testing.assert_allclose(model.intercept_[k], rk.mean() - xk.mean(axis=0) @ beta)
    no_intercept = RidgeRewardModel(alpha=alpha, fit_intercept=False).fit(x, a, r, 3)
    xk, rk = x[a == 1], r[a == 1]
    beta = np.linalg.solve(xk.T @ xk + alpha * np.eye(3), xk.T @ rk)
    np.testing.assert_allclose(no_intercept.coef_[1], beta, rtol=1e-10)
    assert np.all(no_intercept.intercept_[:3] == 0.0)


def test_unlogged_action_predicts_pooled_mean() -> None:
    x, a, r, *_ = linear_data(n=200)
    for model in (RidgeRewardModel(), LogisticRewardModel()):
        y = (r > 0).astype(float)
        model.fit(x, a, y, n_actions=4)  # action 3 never logged
        q = model.predict(x)
        np.testing.assert_allclose(q[:, 3], y.mean(), rtol=1e-9)


def test_logistic_recovers_coefficients_and_converges() -> None:
    rng = np.random.default_rng(1)
    n, d, k = 30_000, 2, 2
    x = rng.normal(size=(n, d))
    a = rng.integers(0, k, n)
    coef = np.array([[1.0, -0.5], [-1.5, 0.7]])
    intercept = np.array([0.3, -0.2])
    p = 1.0 / (1.0 + np.exp(-(np.einsum("nd,nd->n", x, coef[a]) + intercept[a])))
    y = (rng.random(n) < p).astype(float)
    model = LogisticRewardModel(alpha=1e-3).fit(x, a, y, k)
    assert model.converged_.all()
    np.testing.assert_allclose(model.coef_, coef, atol=0.08)
    np.testing.assert_allclose(model.intercept_, intercept, atol=0.08)
    q = model.predict(x)
    assert q.shape == (n, k) and np.all((q > 0) & (q < 1))


def test_logistic_solution_is_a_stationary_point_of_the_penalised_loss() -> None:
    x, a, r, *_ = linear_data(n=600, noise=1.0, seed=3)
    y = 1.0 / (1.0 + np.exp(-r))  # fractional targets are allowed
    alpha = 2.0
    model = LogisticRewardModel(alpha=alpha, tol=1e-12).fit(x, a, y, 3)
    for k in range(3):
        xk, yk = x[a == k], y[a == k]
        mu = 1.0 / (1.0 + np.exp(-(xk @ model.coef_[k] + model.intercept_[k])))
        grad_coef = xk.T @ (mu - yk) + alpha * model.coef_[k]
        grad_b = np.sum(mu - yk) + 1e-6 * model.intercept_[k]
        np.testing.assert_allclose(grad_coef, 0.0, atol=1e-8)
        assert abs(grad_b) < 1e-8


def test_logistic_handles_all_zero_rewards_and_rejects_out_of_range() -> None:
    x, a, _, *_ = linear_data(n=300)
    y = np.zeros(300)
    y[a == 0] = 1.0  # action 0 always succeeds, others never
    model = LogisticRewardModel().fit(x, a, y, 3)
    q = model.predict(x)
    assert np.all(np.isfinite(q))
    assert q[:, 0].min() > 0.95 and q[:, 1:].max() < 0.05
    with pytest.raises(ValueError, match=r"reward must be in \[0, 1\]"):
        LogisticRewardModel().fit(x, a, np.full(300, 2.0), 3)


def test_settings_and_fitted_state() -> None:
    model = RidgeRewardModel(alpha=3.0)
    assert model.get_params() == {"alpha": 3.0, "fit_intercept": True}
    assert not hasattr(model, "coef_")
    with pytest.raises(ValueError, match="not fitted"):
        model.predict(np.zeros((2, 3)))
    logistic = LogisticRewardModel(max_iter=5)
    assert type(logistic)(**logistic.get_params()).get_params() == logistic.get_params()
    x, a, r, *_ = linear_data(n=100)
    model.fit(x, a, r, 3)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="action"):
        model.fit(x, a + 5, r, 3)
    with pytest.raises(ValueError, match="same number of rows"):
        model.fit(x[:-1], a, r, 3)
    with pytest.raises(ValueError, match="alpha"):
        RidgeRewardModel(alpha=-1.0).fit(x, a, r, 3)


class _Memoriser:
    """Predicts 1 for rows seen in training (by id in column 0), 0 otherwise."""

    def fit(self, X, action, reward, n_actions):
        self.seen_ = set(np.asarray(X)[:, 0].astype(int).tolist())
        self.k_ = n_actions
        return self

    def predict(self, X):
        ids = np.asarray(X)[:, 0].astype(int)
        seen = np.isin(ids, list(self.seen_)).astype(float)
        return np.repeat(seen[:, None], self.k_, axis=1)


def test_cross_fit_predicts_each_row_out_of_fold() -> None:
    n = 101
    x = np.column_stack([np.arange(n), np.zeros(n)])
    a = np.arange(n) % 2
    r = np.zeros(n)
    q = cross_fit(_Memoriser, x, a, r, n_actions=2, n_folds=5, seed=0)
    assert q.shape == (n, 2)
    assert np.all(q == 0.0)  # no row was predicted by a model that saw it


def test_cross_fit_is_seeded_and_close_to_in_sample_fit() -> None:
    x, a, r, *_ = linear_data(n=2000, noise=0.1)
    factory = lambda: RidgeRewardModel(alpha=1.0)  # noqa: E731
    q1 = cross_fit(factory, x, a, r, 3, n_folds=4, seed=1)
    q2 = cross_fit(factory, x, a, r, 3, n_folds=4, seed=1)
    np.testing.assert_array_equal(q1, q2)
    q_in = factory().fit(x, a, r, 3).predict(x)
    np.testing.assert_allclose(q1, q_in, atol=0.05)
    with pytest.raises(ValueError, match="n_folds"):
        cross_fit(factory, x, a, r, 3, n_folds=1)
