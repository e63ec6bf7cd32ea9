"""Per-action reward models ``q(x, k)`` for DM / DR-type estimators, and cross-fitting.

Both models fit one disjoint linear model per action (the ``k``-th model sees only rounds where
action ``k`` was logged):

* :class:`RidgeRewardModel` -- ridge regression ``q(x, k) = x' beta_k + b_k``;
* :class:`LogisticRewardModel` -- L2-penalised logistic regression
  ``q(x, k) = sigmoid(x' beta_k + b_k)`` for rewards in [0, 1], fitted by damped Newton / IRLS.

sklearn habits: constructors only store settings (``get_params()``), ``fit`` returns ``self``,
fitted state has trailing underscores. Shapes: ``X`` (n, d), ``action`` (n,) ints in [0, K),
``reward`` (n,); ``predict(X)`` returns (n, K).

:func:`cross_fit` predicts every fold with a model fitted on the other folds, so that
``q[i, :]`` does not depend on round ``i``'s own reward (this keeps DR unbiased when the
propensities are right, and avoids over-fitting the correction term).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bandits.ope.validation import as_action_array, as_float_array, check_finite

__all__ = ["LogisticRewardModel", "RewardModel", "RidgeRewardModel", "cross_fit"]


class RewardModel(Protocol):
    """Anything with ``fit(X, action, reward, n_actions) -> self`` and ``predict(X) -> (n, K)``."""

    def fit(
        self, X: ArrayLike, action: ArrayLike, reward: ArrayLike, n_actions: int
    ) -> RewardModel: ...

    def predict(self, X: ArrayLike) -> NDArray[np.float64]: ...


class _SettingsMixin:
    """``get_params`` / ``set_params`` from the constructor signature (sklearn-style)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor settings as a flat dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor settings by name; unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no setting {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _check_training_data(
    X: ArrayLike, action: ArrayLike, reward: ArrayLike, n_actions: int
) -> tuple[NDArray[np.float64], NDArray[np.integer], NDArray[np.float64]]:
    if isinstance(n_actions, bool) or not isinstance(n_actions, numbers.Integral) or n_actions < 1:
        raise ValueError(f"n_actions must be a positive integer, got {n_actions!r}")
    x = as_float_array(X, "X", 2)
    r = as_float_array(reward, "reward", 1)
    a = as_action_array(action, int(n_actions))
    if not (x.shape[0] == a.shape[0] == r.shape[0]):
        raise ValueError(
            f"X, action and reward must have the same number of rows, got "
            f"{x.shape[0]}, {a.shape[0]}, {r.shape[0]}"
        )
    if x.shape[0] == 0:
        raise ValueError("X must have at least one row")
    check_finite(x, "X")
    check_finite(r, "reward")
    return x, a, r


def _groups_by_action(
    a: NDArray[np.integer], n_actions: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row order sorting by action, and the (K + 1,) boundaries of each action's block."""
    order = np.argsort(a, kind="stable")
    bounds = np.zeros(n_actions + 1, dtype=np.intp)
    np.cumsum(np.bincount(a, minlength=n_actions), out=bounds[1:])
    return order, bounds


class _LinearPerAction(_SettingsMixin):
    """Shared predict-side state: ``coef_`` (K, d), ``intercept_`` (K,)."""

    coef_: NDArray[np.float64]
    intercept_: NDArray[np.float64]
    n_features_in_: int
    n_actions_: int

    def _linear(self, X: ArrayLike) -> NDArray[np.float64]:
        if not hasattr(self, "coef_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit first")
        x = as_float_array(X, "X", 2)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, the model was fitted with {self.n_features_in_}"
            )
        return x @ self.coef_.T + self.intercept_


class RidgeRewardModel(_LinearPerAction):
    """Disjoint per-action ridge regression.

    For each action k with rows ``S_k = {i : a_i = k}``::

        beta_k, b_k = argmin sum_{i in S_k} (r_i - x_i' beta_k - b_k)^2 + alpha |beta_k|^2

    (intercept ``b_k`` unpenalised; solved in closed form on centred data). An action with no
    logged rows predicts the pooled mean reward.

    Parameters
    ----------
    alpha : float >= 0, default 1.0
        L2 penalty on the slopes.
    fit_intercept : bool, default True

    Fitted attributes: ``coef_`` (K, d), ``intercept_`` (K,), ``action_counts_`` (K,),
    ``n_actions_``, ``n_features_in_``.
    """

    def __init__(self, alpha: float = 1.0, fit_intercept: bool = True) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def fit(self, X: ArrayLike, action: ArrayLike, reward: ArrayLike, n_actions: int) -> Self:
        """Fit one ridge model per action. ``X`` (n, d), ``action`` (n,), ``reward`` (n,)."""
        if not (isinstance(self.alpha, numbers.Real) and self.alpha >= 0):
            raise ValueError(f"alpha must be a number >= 0, got {self.alpha!r}")
        x, a, r = _check_training_data(X, action, reward, n_actions)
        k_actions, d = int(n_actions), x.shape[1]
        order, bounds = _groups_by_action(a, k_actions)
        xs, rs = x[order], r[order]
        coef = np.zeros((k_actions, d))
        intercept = np.full(k_actions, float(np.mean(r)))
        penalty = float(self.alpha) * np.eye(d)
        for k in range(k_actions):  # loop over actions, each a BLAS solve on its block
            lo, hi = bounds[k], bounds[k + 1]
            if hi == lo:
                continue
            xk, rk = xs[lo:hi], rs[lo:hi]
            x_mean, r_mean = np.zeros(d), 0.0
            if self.fit_intercept:
                x_mean, r_mean = xk.mean(axis=0), float(rk.mean())
                xk, rk = xk - x_mean, rk - r_mean
            beta = _solve_psd(xk.T @ xk + penalty, xk.T @ rk)
            coef[k] = beta
            intercept[k] = r_mean - float(x_mean @ beta)
        self.coef_ = coef
        self.intercept_ = intercept
        self.action_counts_ = np.diff(bounds)
        self.n_actions_ = k_actions
        self.n_features_in_ = d
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predicted rewards ``q[i, k] = x_i' beta_k + b_k``, shape (n, K)."""
        return self._linear(X)


def _solve_psd(gram: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Solve ``gram @ beta = rhs``; minimum-norm least squares if ``gram`` is singular."""
    try:
        solution = np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:
        solution = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return np.asarray(solution, dtype=np.float64)


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _log1pexp(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(1 + exp(z))`` without overflow."""
    return np.logaddexp(0.0, z)


class LogisticRewardModel(_LinearPerAction):
    """Disjoint per-action L2-penalised logistic regression for rewards in [0, 1].

    For each action k (rows ``S_k``), with ``eta_i = x_i' beta_k + b_k``::

        minimise  sum_{i in S_k} [log(1 + e^{eta_i}) - r_i eta_i] + alpha/2 |beta_k|^2
                  + 1e-6/2 b_k^2

    (the cross-entropy, valid for fractional ``r`` too; the tiny intercept penalty keeps the
    problem well posed when all of an action's rewards are 0 or all are 1). Solved by Newton /
    IRLS steps ``theta -= H^{-1} g`` with step halving whenever the objective does not decrease,
    starting from ``b_k = logit(mean r)``; stops when ``max |step| < tol`` or after ``max_iter``
    steps. An action with no rows predicts the pooled mean reward.

    Parameters
    ----------
    alpha : float >= 0, default 1.0
    max_iter : int >= 1, default 50
    tol : float > 0, default 1e-8
    fit_intercept : bool, default True

    Fitted attributes: ``coef_`` (K, d), ``intercept_`` (K,), ``n_iter_`` (K,),
    ``converged_`` (K,) bool, ``action_counts_`` (K,), ``n_actions_``, ``n_features_in_``.
    """

    _INTERCEPT_PENALTY = 1e-6

    def __init__(
        self,
        alpha: float = 1.0,
        max_iter: int = 50,
        tol: float = 1e-8,
        fit_intercept: bool = True,
    ) -> None:
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept

    def fit(self, X: ArrayLike, action: ArrayLike, reward: ArrayLike, n_actions: int) -> Self:
        """Fit one logistic model per action. ``X`` (n, d), ``action`` (n,), ``reward`` (n,)
        with values in [0, 1]."""
        if not (isinstance(self.alpha, numbers.Real) and self.alpha >= 0):
            raise ValueError(f"alpha must be a number >= 0, got {self.alpha!r}")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not (isinstance(self.tol, numbers.Real) and self.tol > 0):
            raise ValueError(f"tol must be a number > 0, got {self.tol!r}")
        x, a, r = _check_training_data(X, action, reward, n_actions)
        if not (r.min() >= 0.0 and r.max() <= 1.0):
            bad = np.flatnonzero((r < 0.0) | (r > 1.0))[:5]
            raise ValueError(
                f"reward must be in [0, 1] for LogisticRewardModel: rows {bad.tolist()} "
                f"(values {', '.join(f'{v:.6g}' for v in r[bad])})"
            )
        k_actions, d = int(n_actions), x.shape[1]
        order, bounds = _groups_by_action(a, k_actions)
        xs, rs = x[order], r[order]
        if self.fit_intercept:
            xs = np.hstack([xs, np.ones((xs.shape[0], 1))])
        n_par = xs.shape[1]
        penalty = np.full(n_par, float(self.alpha))
        if self.fit_intercept:
            penalty[-1] = self._INTERCEPT_PENALTY
        pooled = _logit(float(np.mean(r)), r.shape[0])
        coef = np.zeros((k_actions, d))
        intercept = np.full(k_actions, pooled if self.fit_intercept else 0.0)
        n_iter = np.zeros(k_actions, dtype=np.int64)
        converged = np.ones(k_actions, dtype=bool)
        for k in range(k_actions):  # loop over actions (not rows)
            lo, hi = bounds[k], bounds[k + 1]
            if hi == lo:
                continue
            theta = np.zeros(n_par)
            if self.fit_intercept:
                theta[-1] = _logit(float(rs[lo:hi].mean()), hi - lo)
            theta, n_iter[k], converged[k] = self._newton(xs[lo:hi], rs[lo:hi], theta, penalty)
            coef[k] = theta[:d]
            intercept[k] = theta[-1] if self.fit_intercept else 0.0
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.action_counts_ = np.diff(bounds)
        self.n_actions_ = k_actions
        self.n_features_in_ = d
        return self

    def _newton(
        self,
        z: NDArray[np.float64],
        y: NDArray[np.float64],
        theta: NDArray[np.float64],
        penalty: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], int, bool]:
        """Damped Newton on one action's block ``z`` (m, p), ``y`` (m,)."""

        def objective(t: NDArray[np.float64]) -> float:
            eta = z @ t
            return float(np.sum(_log1pexp(eta) - y * eta) + 0.5 * np.dot(penalty * t, t))

        obj = objective(theta)
        for it in range(1, int(self.max_iter) + 1):
            mu = _sigmoid(z @ theta)
            grad = z.T @ (mu - y) + penalty * theta
            hess = (z * (mu * (1.0 - mu))[:, None]).T @ z + np.diag(penalty)
            step = _solve_psd(hess, grad)
            scale = 1.0
            for _ in range(30):  # step halving until the objective does not increase
                candidate = theta - scale * step
                cand_obj = objective(candidate)
                if cand_obj <= obj:
                    break
                scale *= 0.5
            else:
                return theta, it, False
            theta, obj = candidate, cand_obj
            if float(np.max(np.abs(scale * step))) < self.tol:
                return theta, it, True
        return theta, int(self.max_iter), False

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predicted success probabilities ``sigmoid(x_i' beta_k + b_k)``, shape (n, K)."""
        return _sigmoid(self._linear(X))


def _logit(mean: float, m: int) -> float:
    """Logit of a mean clipped to ``[0.5/(m+1), 1 - 0.5/(m+1)]`` (finite for 0/1 means)."""
    eps = 0.5 / (m + 1)
    p = min(max(mean, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


def cross_fit(
    model_factory: Callable[[], RewardModel],
    X: ArrayLike,
    action: ArrayLike,
    reward: ArrayLike,
    n_actions: int,
    n_folds: int = 5,
    seed: int | None = None,
) -> NDArray[np.float64]:
    """Out-of-fold reward predictions ``q_hat`` (n, K).

    Rows are split into ``n_folds`` folds of (almost) equal size by a random permutation from
    ``numpy.random.default_rng(seed)``; the rows of fold f are predicted by
    ``model_factory()`` fitted on all other folds. ``X`` (n, d), ``action`` (n,), ``reward`` (n,).
    """
    x, a, r = _check_training_data(X, action, reward, n_actions)
    n = x.shape[0]
    if (
        isinstance(n_folds, bool)
        or not isinstance(n_folds, numbers.Integral)
        or not (2 <= n_folds <= n)
    ):
        raise ValueError(f"n_folds must be an integer in [2, n={n}], got {n_folds!r}")
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.intp)
    fold[rng.permutation(n)] = np.arange(n) % n_folds
    q_hat = np.empty((n, int(n_actions)), dtype=np.float64)
    for f in range(int(n_folds)):  # loop over folds (not rows)
        held_out = fold == f
        train = ~held_out
        model = model_factory().fit(x[train], a[train], r[train], int(n_actions))
        q_hat[held_out] = model.predict(x[held_out])
    return q_hat
