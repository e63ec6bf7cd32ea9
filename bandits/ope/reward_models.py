"""Per-action reward models ``q(x, k)`` for DM / DR-type estimators, and cross-fitting.

Two models fit one disjoint linear model per action (the ``k``-th model sees only rounds where
action ``k`` was logged):

* :class:`RidgeRewardModel` -- ridge regression ``q(x, k) = x' beta_k + b_k``;
* :class:`LogisticRewardModel` -- L2-penalised logistic regression
  ``q(x, k) = sigmoid(x' beta_k + b_k)`` for rewards in [0, 1], fitted by damped Newton / IRLS.

:class:`PooledLogisticRewardModel` instead fits one logistic regression over all (context,
variant) pairs with shared slopes, variant features (:func:`action_feature_matrix` turns a
catalog frame into them) and context x variant-feature interactions, so that rarely or never
shown variants borrow strength from the others; its predictions always lie inside (0, 1).

sklearn habits: constructors only store settings (explicit keyword arguments: ``get_settings()``,
``clone()``, :class:`bandits.settings.Settings`), ``fit`` returns ``self``,
fitted state has trailing underscores. Shapes: ``X`` (n, d), ``action`` (n,) ints in [0, K),
``reward`` (n,); ``predict(X)`` returns (n, K).

:func:`cross_fit` predicts every fold with a model fitted on the other folds, so that
``q[i, :]`` does not depend on round ``i``'s own reward (this keeps DR unbiased when the
propensities are right, and avoids over-fitting the correction term).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bandits.errors import NotFittedError
from bandits.ope.validation import as_action_array, as_float_array, check_finite
from bandits.settings import Settings

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "LogisticRewardModel",
    "PooledLogisticRewardModel",
    "RewardModel",
    "RidgeRewardModel",
    "action_feature_matrix",
    "cross_fit",
]


class RewardModel(Protocol):
    """Anything with ``fit(X, action, reward, n_actions) -> self`` and ``predict(X) -> (n, K)``."""

    def fit(
        self, X: ArrayLike, action: ArrayLike, reward: ArrayLike, n_actions: int
    ) -> RewardModel: ...

    def predict(self, X: ArrayLike) -> NDArray[np.float64]: ...


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


def _check_unit_interval(r: NDArray[np.float64], owner: str) -> None:
    """One-line ``ValueError`` naming the first rows whose reward is outside [0, 1]."""
    if not (r.min() >= 0.0 and r.max() <= 1.0):
        bad = np.flatnonzero((r < 0.0) | (r > 1.0))[:5]
        raise ValueError(
            f"reward must be in [0, 1] for {owner}: rows {bad.tolist()} "
            f"(values {', '.join(f'{v:.6g}' for v in r[bad])})"
        )


def _groups_by_action(
    a: NDArray[np.integer], n_actions: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row order sorting by action, and the (K + 1,) boundaries of each action's block."""
    order = np.argsort(a, kind="stable")
    bounds = np.zeros(n_actions + 1, dtype=np.intp)
    np.cumsum(np.bincount(a, minlength=n_actions), out=bounds[1:])
    return order, bounds


class _LinearPerAction(Settings):
    """Shared predict-side state: ``coef_`` (K, d), ``intercept_`` (K,). Settings (explicit
    keyword arguments, ``get_settings`` / ``get_params``, ``set_params``, ``clone``) come from
    :class:`bandits.settings.Settings`; reading a fitted attribute before :meth:`fit` is a
    one-line :class:`~bandits.errors.NotFittedError`."""

    def _not_fitted_message(self) -> str:
        return f"{type(self).__name__} is not fitted: call fit(X, action, reward, n_actions) first"

    def _is_fitted(self) -> bool:
        return "coef_" in vars(self)

    coef_: NDArray[np.float64]
    intercept_: NDArray[np.float64]
    n_features_in_: int
    n_actions_: int

    def _linear(self, X: ArrayLike) -> NDArray[np.float64]:
        if not self._is_fitted():
            raise NotFittedError(self._not_fitted_message())
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
        _check_unit_interval(r, "LogisticRewardModel")
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


# ---------------------------------------------------------------------------------------------
# Pooled logistic model over (context, variant) pairs
# ---------------------------------------------------------------------------------------------

_ETA_CLIP = 30.0
"""Linear predictors are clipped to ``[-30, 30]`` before the sigmoid, so every prediction lies
in ``[sigmoid(-30), sigmoid(30)] = [9.4e-14, 1 - 9.4e-14]``, strictly inside (0, 1)."""

_POOLED_INTERCEPT_PENALTY = 1e-6
_DEFAULT_INTERACTION_FACTOR = 30.0
_CHUNK_ROWS = 1 << 15


def _is_positive_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) > 0


def _sigmoid_clipped(eta: NDArray[np.float64]) -> NDArray[np.float64]:
    """``1 / (1 + exp(-clip(eta, -30, 30)))`` in place (``eta`` is overwritten and returned)."""
    np.clip(eta, -_ETA_CLIP, _ETA_CLIP, out=eta)
    np.negative(eta, out=eta)
    np.exp(eta, out=eta)
    eta += 1.0
    np.reciprocal(eta, out=eta)
    return eta


class PooledLogisticRewardModel(_LinearPerAction):
    """One L2-penalised logistic regression over all (context, variant) pairs.

    Unlike the disjoint models, every logged row informs every variant: the variants share
    an intercept, context slopes and -- through their features -- variant-feature effects and
    context x variant-feature interactions, so a rarely shown variant borrows strength from the
    others and a never-shown one is predicted from its features.

    Model. For a context ``x_i`` (d,) and variant ``k`` with feature row ``a_k`` (m,)::

        eta_ik = b0 + u_k + a_k' beta + x_i' gamma + x_i' Gamma a_k + x_i' delta_k
        q(x_i, k) = sigmoid(eta_ik)

    with ``b0`` a scalar, ``u`` (K,) per-variant intercepts, ``beta`` (m,), ``gamma`` (d,),
    ``Gamma`` (d, m) and ``delta`` (K, d) per-variant slopes (only when ``per_action_alpha`` is
    not None). ``x`` and ``a`` enter centred: ``x`` at its mean over the fitted rows
    (``x_mean_``), ``a`` at its mean over the K variants (``action_feature_mean_``), so ``b0``
    and ``gamma`` describe the average variant and ``u_k = 0``, ``delta_k = 0`` mean "no
    variant-specific departure". Without ``action_features`` (``m = 0``) the terms with ``a``
    vanish: per-variant intercepts, shared context slopes and per-variant slopes.

    Fit. Only the logged rows ``(x_i, a_i, r_i)``, ``i = 1..n``, are used::

        minimise  sum_i [log(1 + e^{eta_i}) - r_i eta_i]            (eta_i = eta_{i, a_i})
                  + alpha/2 (|beta|^2 + |gamma|^2) + interaction_alpha/2 |Gamma|_F^2
                  + intercept_alpha/2 |u|^2 + per_action_alpha/2 |delta|_F^2
                  + 1e-6/2 b0^2

    (the cross-entropy, valid for fractional rewards in [0, 1]; the tiny ``b0`` penalty keeps
    the problem well posed when all rewards are 0 or all are 1). ``intercept_alpha`` shrinks a
    variant's own intercept towards the pooled prediction: a variant without rows keeps
    ``u_k = 0`` and ``delta_k = 0`` and is predicted from ``b0, beta, gamma, Gamma`` alone.
    The slopes of ``x`` are penalised on the scale of ``x`` as given (standardise numeric
    context columns first, as for the other models); build ``action_features`` with
    :func:`action_feature_matrix` (one-hot / 0-1 / standardised columns). At the optimum the
    fitted probabilities of the logged actions average to the observed mean reward (up to the
    ``b0`` penalty).

    Solved by damped Newton steps (step halving whenever the objective does not decrease)
    from ``b0 = logit(mean r)`` and all else 0; stops when ``max |step| < tol`` or after
    ``max_iter`` steps (``converged_``, ``n_iter_``). Each step costs one pass over the rows
    (per-variant weighted Gram matrices, ``O(n d^2)``) plus a dense solve of size
    ``(d + 1)(m + 1)`` (the per-variant parameters are eliminated exactly, block by block), so
    fitting 1M rows with d = 40, K = 12 takes a few seconds. With ``max_rows`` set, a fit on
    more rows uses a uniform random subset of ``max_rows`` rows drawn with
    ``numpy.random.default_rng(seed)`` (deterministic for a given ``seed``).

    Memory: one action-sorted copy of ``X`` (n, d) plus (K, d+1, d+1) Gram matrices and the
    ((d+1)(m+1))^2 shared system (752^2 for d = 46, m = 15).

    Prediction is one matrix product: ``q = sigmoid(X @ coef_.T + intercept_)`` with the
    effective per-variant coefficients ``coef_`` (K, d) (``coef_.T`` is the (d, K) matrix) and
    offsets ``intercept_`` (K,), clipped so that ``q`` lies in ``[9.4e-14, 1 - 9.4e-14]``.

    Shapes: ``X`` (n, d), ``action`` (n,) ints in ``[0, K)``, ``reward`` (n,) in [0, 1],
    ``action_features`` (K, m); ``predict(X)`` returns (n, K).

    Parameters
    ----------
    action_features : array-like (K, m) or None, default None
        Numeric variant features (e.g. :func:`action_feature_matrix` of the catalog); row k
        describes action k. None (or m = 0): no variant features.
    alpha : float > 0, default 1.0
        L2 penalty on the main effects ``beta`` and ``gamma`` (a Gaussian prior with standard
        deviation ``1/sqrt(alpha)`` logits per coefficient). All penalties must be > 0: the
        parametrisation is redundant (e.g. ``gamma`` and the ``delta_k``), the penalties make
        the solution unique.
    intercept_alpha : float > 0, default 1.0
        L2 penalty on the per-variant intercepts ``u`` (small: a variant with many rows gets
        its own level, one with few rows or none stays near the pooled prediction).
    per_action_alpha : float > 0 or None, default 30.0
        L2 penalty on the per-variant slopes ``delta`` (K * d of them, hence stronger); None
        leaves them out of the model.
    interaction_alpha : float > 0 or None, default None
        L2 penalty on the interactions ``Gamma`` (d * m of them); None means ``30 * alpha``.
        The defaults were chosen on simulated uniform logs (5k-50k rows, click rates 0.3%-20%,
        12-40 variants), where weaker interaction / per-variant penalties over-fitted.
    max_iter : int >= 1, default 50
    tol : float > 0, default 1e-6
    max_rows : int >= 1 or None, default None
        Fit on at most this many rows (uniform subsample); None uses all rows.
    seed : int, default 0
        Seed of the subsample (only used when ``max_rows`` is exceeded).

    Fitted attributes
    -----------------
    ``coef_`` (K, d), ``intercept_`` (K,): effective coefficients used by :meth:`predict`;
    ``pooled_intercept_`` (b0), ``action_intercepts_`` (K,) (u), ``action_feature_coef_``
    (m,) (beta), ``context_coef_`` (d,) (gamma), ``interaction_coef_`` (d, m) (Gamma),
    ``per_action_coef_`` (K, d) (delta; zeros when ``per_action_alpha`` is None),
    ``x_mean_`` (d,), ``action_feature_mean_`` (m,), ``action_counts_`` (K,) (logged rows
    per action, before any subsample), ``n_iter_``, ``converged_``, ``n_rows_fitted_``,
    ``n_actions_``, ``n_features_in_``.
    """

    def __init__(
        self,
        action_features: ArrayLike | None = None,
        alpha: float = 1.0,
        intercept_alpha: float = 1.0,
        per_action_alpha: float | None = 30.0,
        interaction_alpha: float | None = None,
        max_iter: int = 50,
        tol: float = 1e-6,
        max_rows: int | None = None,
        seed: int = 0,
    ) -> None:
        self.action_features = action_features
        self.alpha = alpha
        self.intercept_alpha = intercept_alpha
        self.per_action_alpha = per_action_alpha
        self.interaction_alpha = interaction_alpha
        self.max_iter = max_iter
        self.tol = tol
        self.max_rows = max_rows
        self.seed = seed

    # -- settings -----------------------------------------------------------------------------

    def _check_settings(self) -> None:
        for name in ("alpha", "intercept_alpha"):
            value = getattr(self, name)
            if not _is_positive_number(value):
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        for name in ("per_action_alpha", "interaction_alpha"):
            value = getattr(self, name)
            if value is not None and not _is_positive_number(value):
                raise ValueError(f"{name} must be a number > 0 or None, got {value!r}")
        if not (isinstance(self.max_iter, numbers.Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not (isinstance(self.tol, numbers.Real) and self.tol > 0):
            raise ValueError(f"tol must be a number > 0, got {self.tol!r}")
        mr = self.max_rows
        if mr is not None and (
            isinstance(mr, bool) or not (isinstance(mr, numbers.Integral) and mr >= 1)
        ):
            raise ValueError(f"max_rows must be an integer >= 1 or None, got {mr!r}")

    def _action_feature_array(self, n_actions: int) -> NDArray[np.float64]:
        if self.action_features is None:
            return np.zeros((n_actions, 0))
        feats = np.asarray(self.action_features)
        if feats.ndim != 2:
            raise ValueError(f"action_features must be a 2-d (K, m) array, got shape {feats.shape}")
        if feats.shape[0] != n_actions:
            raise ValueError(
                f"action_features has {feats.shape[0]} rows, expected one per action "
                f"(n_actions={n_actions})"
            )
        if not np.issubdtype(feats.dtype, np.number) and feats.dtype != np.bool_:
            raise ValueError(f"action_features must be numeric, got dtype {feats.dtype}")
        feats = feats.astype(np.float64)
        if not np.isfinite(feats).all():
            bad = np.unique(np.nonzero(~np.isfinite(feats))[0])[:5]
            raise ValueError(f"action_features must be finite: rows {bad.tolist()}")
        return feats

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X: ArrayLike, action: ArrayLike, reward: ArrayLike, n_actions: int) -> Self:
        """Fit on logged rows: ``X`` (n, d), ``action`` (n,) in ``[0, n_actions)``, ``reward``
        (n,) in [0, 1]."""
        self._check_settings()
        x, a, r = _check_training_data(X, action, reward, n_actions)
        _check_unit_interval(r, type(self).__name__)
        k_actions, d = int(n_actions), x.shape[1]
        feats = self._action_feature_array(k_actions)
        counts = np.bincount(a, minlength=k_actions)
        if self.max_rows is not None and x.shape[0] > self.max_rows:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(x.shape[0], size=int(self.max_rows), replace=False))
            x, a, r = x[keep], a[keep], r[keep]
        n = x.shape[0]
        x_mean = x.mean(axis=0)
        a_mean = feats.mean(axis=0)
        order, bounds = _groups_by_action(a, k_actions)
        xs = x[order]  # one sorted copy, centred in place
        xs -= x_mean
        rs = r[order]
        # s_k = [1, a_k - a_mean]: the variant's row of the pooled design, (K, q)
        s = np.hstack([np.ones((k_actions, 1)), feats - a_mean])
        slopes = self.per_action_alpha is not None
        solver = _PooledNewton(xs, rs, bounds, s, slopes)
        pen_a = np.full((d + 1, s.shape[1]), float(self.alpha))
        pen_a[0, 0] = _POOLED_INTERCEPT_PENALTY
        pen_a[1:, 1:] = float(
            _DEFAULT_INTERACTION_FACTOR * self.alpha
            if self.interaction_alpha is None
            else self.interaction_alpha
        )
        pen_d = np.full((d + 1 if slopes else 1, k_actions), float(self.intercept_alpha))
        if slopes:
            pen_d[1:] = float(self.per_action_alpha)  # type: ignore[arg-type]
        theta_a = np.zeros_like(pen_a)
        theta_a[0, 0] = _logit(float(np.mean(r)), n)
        theta_d = np.zeros_like(pen_d)
        theta_a, theta_d, n_iter, converged = solver.minimise(
            theta_a, theta_d, pen_a, pen_d, int(self.max_iter), float(self.tol)
        )
        w = solver.effective(theta_a, theta_d)  # (d + 1, K), on centred x
        self.coef_ = np.ascontiguousarray(w[1:].T)
        self.intercept_ = w[0] - x_mean @ w[1:]
        self.pooled_intercept_ = float(theta_a[0, 0])
        self.action_intercepts_ = theta_d[0].copy()
        self.action_feature_coef_ = theta_a[0, 1:].copy()
        self.context_coef_ = theta_a[1:, 0].copy()
        self.interaction_coef_ = theta_a[1:, 1:].copy()
        self.per_action_coef_ = theta_d[1:].T.copy() if slopes else np.zeros((k_actions, d))
        self.x_mean_ = x_mean
        self.action_feature_mean_ = a_mean
        self.action_counts_ = counts
        self.n_iter_ = n_iter
        self.converged_ = converged
        self.n_rows_fitted_ = n
        self.n_actions_ = k_actions
        self.n_features_in_ = d
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Predicted success probabilities ``q[i, k] = sigmoid(eta_ik)``, shape (n, K), all in
        ``[9.4e-14, 1 - 9.4e-14]``."""
        return _sigmoid_clipped(self._linear(X))


class _PooledNewton:
    """Damped Newton for the pooled logistic model on action-sorted, centred rows.

    Why Newton and not L-BFGS: the loss depends on the parameters only through the effective
    per-action coefficients ``W = Theta_A S' + E_J Theta_D`` ((d+1, K)), so the Hessian is
    ``sum_k (s_k s_k') (x) H_k`` (plus the per-action blocks) with ``H_k`` the weighted Gram
    matrix of action k's rows. One pass over the data (``O(n d^2)``, BLAS) gives all ``H_k``;
    the per-action parameters are then eliminated exactly (Schur complement, K small solves)
    and the shared ones solved densely. Newton converges in ~5-15 such passes even at click
    rates of 0.4% with weakly identified rare variants, where L-BFGS needs hundreds of
    ``O(n d)`` passes on this badly conditioned problem (weak intercept penalty vs. large
    curvature of frequent variants).

    Parameters are ``Theta_A`` (d+1, q) -- row 0 = ``[b0, beta]``, rows 1.. = ``[gamma,
    Gamma]`` -- and ``Theta_D`` (|J|, K) -- row 0 = ``u``, rows 1.. = ``delta'`` when per-action
    slopes are on (``J`` = all d+1 rows of ``[1, x]``, else just the intercept row).
    """

    def __init__(
        self,
        xs: NDArray[np.float64],
        rs: NDArray[np.float64],
        bounds: NDArray[np.intp],
        s: NDArray[np.float64],
        slopes: bool,
    ) -> None:
        self.xs, self.rs, self.s = xs, rs, s
        self.k_actions, self.q = s.shape
        self.d1 = xs.shape[1] + 1
        self.n_j = self.d1 if slopes else 1
        # (action, lo, hi) segments of at most _CHUNK_ROWS rows (bounded temporaries)
        self.segments: list[tuple[int, int, int]] = []
        for k in range(self.k_actions):
            for lo in range(int(bounds[k]), int(bounds[k + 1]), _CHUNK_ROWS):
                self.segments.append((k, lo, min(lo + _CHUNK_ROWS, int(bounds[k + 1]))))

    def effective(
        self, theta_a: NDArray[np.float64], theta_d: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Per-action coefficients on ``[1, x - x_mean]``, shape (d+1, K)."""
        w = theta_a @ self.s.T
        w[: self.n_j] += theta_d
        return w

    def linear(self, w: NDArray[np.float64]) -> NDArray[np.float64]:
        """``eta_i = [1, x_i] . w[:, a_i]`` for the sorted rows, shape (n,)."""
        eta = np.empty(self.xs.shape[0])
        for k, lo, hi in self.segments:  # loop over action blocks / chunks, not rows
            np.matmul(self.xs[lo:hi], w[1:, k], out=eta[lo:hi])
            eta[lo:hi] += w[0, k]
        return eta

    def loss(self, eta: NDArray[np.float64]) -> float:
        return float(np.sum(_log1pexp(eta)) - np.dot(self.rs, eta))

    def gradient_and_hessians(
        self, eta: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-action gradients (d+1, K) and Hessians (K, d+1, d+1) of the data loss with
        respect to the effective coefficients."""
        mu = _sigmoid(eta)
        res = mu - self.rs
        sw = np.sqrt(mu * (1.0 - mu))
        grad = np.zeros((self.d1, self.k_actions))
        hess = np.zeros((self.k_actions, self.d1, self.d1))
        for k, lo, hi in self.segments:
            xk = self.xs[lo:hi]
            grad[0, k] += res[lo:hi].sum()
            grad[1:, k] += res[lo:hi] @ xk
            z = xk * sw[lo:hi, None]
            hk = hess[k]
            hk[0, 0] += sw[lo:hi] @ sw[lo:hi]
            zs = sw[lo:hi] @ z
            hk[0, 1:] += zs
            hk[1:, 0] += zs
            hk[1:, 1:] += z.T @ z
        return grad, hess

    def newton_step(
        self,
        grad_a: NDArray[np.float64],
        grad_d: NDArray[np.float64],
        hess: NDArray[np.float64],
        pen_a: NDArray[np.float64],
        pen_d: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Solve the full Newton system, eliminating the per-action parameters first."""
        s, nj, d1, q = self.s, self.n_j, self.d1, self.q
        h_j = hess[:, :, :nj]  # (K, d+1, |J|) = H_k[:, J]
        dmat = hess[:, :nj, :nj] + pen_d.T[:, :, None] * np.eye(nj)  # (K, |J|, |J|)
        rhs = np.concatenate([h_j.transpose(0, 2, 1), grad_d.T[:, :, None]], axis=2)
        sol = np.linalg.solve(dmat, rhs)  # D_k^-1 [H_k[J, :], g_D,k]
        schur = hess - h_j @ sol[:, :, :d1]  # M_k, (K, d+1, d+1)
        v = np.einsum("kaj,kj->ak", h_j, sol[:, :, d1])  # H_k[:, J] D_k^-1 g_D,k, (d+1, K)
        r_a = grad_a - v @ s
        # sum_k (s_k s_k') (x) M_k in the vec order (i, a) with i over q slowest
        outer = (s[:, :, None] * s[:, None, :]).reshape(self.k_actions, q * q)
        blocks = (outer.T @ schur.reshape(self.k_actions, d1 * d1)).reshape(q, q, d1, d1)
        big = blocks.transpose(0, 2, 1, 3).reshape(q * d1, q * d1)
        big[np.diag_indices_from(big)] += pen_a.T.ravel()
        step_a = _solve_psd(big, r_a.T.ravel()).reshape(q, d1).T
        coupled = np.einsum("kaj,ak->kj", h_j, step_a @ s.T)  # H_k[J, :] (Theta_A s_k)
        step_d = np.linalg.solve(dmat, (grad_d.T - coupled)[:, :, None])[:, :, 0].T
        return step_a, step_d

    def minimise(
        self,
        theta_a: NDArray[np.float64],
        theta_d: NDArray[np.float64],
        pen_a: NDArray[np.float64],
        pen_d: NDArray[np.float64],
        max_iter: int,
        tol: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], int, bool]:
        def penalty(ta: NDArray[np.float64], td: NDArray[np.float64]) -> float:
            return 0.5 * float(np.sum(pen_a * ta * ta) + np.sum(pen_d * td * td))

        eta = self.linear(self.effective(theta_a, theta_d))
        obj = self.loss(eta) + penalty(theta_a, theta_d)
        for it in range(1, max_iter + 1):
            grad, hess = self.gradient_and_hessians(eta)
            grad_a = grad @ self.s + pen_a * theta_a
            grad_d = grad[: self.n_j] + pen_d * theta_d
            step_a, step_d = self.newton_step(grad_a, grad_d, hess, pen_a, pen_d)
            eta_step = self.linear(self.effective(step_a, step_d))
            slack = 1e-12 * max(1.0, abs(obj))  # rounding noise of a sum over n rows
            scale = 1.0
            for _ in range(40):  # step halving until the objective does not increase
                cand_a, cand_d = theta_a - scale * step_a, theta_d - scale * step_d
                cand_eta = eta - scale * eta_step
                cand_obj = self.loss(cand_eta) + penalty(cand_a, cand_d)
                if cand_obj <= obj + slack:
                    break
                scale *= 0.5
            else:
                return theta_a, theta_d, it, False
            theta_a, theta_d, eta, obj = cand_a, cand_d, cand_eta, cand_obj
            size = max(float(np.max(np.abs(step_a))), float(np.max(np.abs(step_d))))
            if scale * size < tol:
                return theta_a, theta_d, it, True
        return theta_a, theta_d, max_iter, False


def action_feature_matrix(catalog: pl.DataFrame) -> NDArray[np.float64]:
    """Variant features (K, m) for :class:`PooledLogisticRewardModel` from a catalog frame.

    ``catalog`` has one row per variant, in action order, with ``variant_id`` (strings,
    unique) as its first column (e.g. ``Catalog.to_frame()``); every other column becomes
    features:

    * strings / categoricals / enums: one 0/1 column per distinct value (values sorted, then
      one for missing values if there are any);
    * booleans: 0/1 (missing -> the column's mean);
    * numbers: standardised to mean 0, standard deviation 1 over the variants (missing or
      non-finite -> the column's mean);
    * anything else (lists, structs, dates, ...) is skipped.

    Columns that end up constant across the variants carry no information and are dropped
    (e.g. a channel every variant suits). Columns come out in the frame's column order.
    Returns a float64 array of shape (K, m), ``m >= 0``.
    """
    import polars as pl

    if not isinstance(catalog, pl.DataFrame):
        raise ValueError(f"catalog must be a polars DataFrame, got {type(catalog).__name__}")
    if catalog.width == 0 or catalog.columns[0] != "variant_id":
        raise ValueError(
            f"catalog's first column must be 'variant_id', got {catalog.columns[:1] or 'none'}"
        )
    if catalog.height == 0:
        raise ValueError("catalog has no variants (0 rows)")
    ids = catalog.get_column("variant_id")
    if ids.dtype != pl.String:
        raise ValueError(f"catalog's variant_id must be strings, got {ids.dtype}")
    if ids.n_unique() != catalog.height or ids.null_count():
        raise ValueError("catalog's variant_id values must be unique and not missing")
    columns: list[NDArray[np.float64]] = []
    for name in catalog.columns[1:]:
        col = catalog.get_column(name)
        dtype = col.dtype
        if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
            values = col.cast(pl.String)
            for level in sorted(values.drop_nulls().unique().to_list()):
                columns.append((values == level).fill_null(False).to_numpy().astype(np.float64))
            if values.null_count():
                columns.append(values.is_null().to_numpy().astype(np.float64))
        elif dtype == pl.Boolean:
            columns.append(_fill_missing(col.cast(pl.Float64).to_numpy()))
        elif dtype.is_numeric():
            v = _fill_missing(col.cast(pl.Float64).to_numpy())
            sd = float(v.std())
            columns.append((v - v.mean()) / sd if sd > 0 else v)
        # other dtypes (List, Struct, Date, ...) are skipped
    if not columns:
        return np.zeros((catalog.height, 0))
    out = np.column_stack(columns)
    varying = np.ptp(out, axis=0) > 0
    return np.ascontiguousarray(out[:, varying])


def _fill_missing(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Replace NaN / infinite entries (nulls become NaN) by the mean of the finite ones."""
    v = np.array(v, dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        v[bad] = v[~bad].mean() if (~bad).any() else 0.0
    return v
