"""Vectorised validation of logged bandit data for the off-policy estimators.

Every check first runs a cheap whole-array reduction (``min``/``max``/``sum``, no temporary
masks) and only when that fails builds a boolean mask to locate the offending rows, so valid
inputs with 10M rows cost a handful of passes over memory. Errors are single-line
:class:`~bandits.errors.DataError` messages (a ``ValueError``) naming the argument and
the first offending row indices, e.g.::

    propensity must be in (0, 1]: rows [3, 17] (values 0, 1.2)

Arrays that already are float64 (or an integer dtype for ``action``) are used without copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bandits.errors import DataError
from bandits.ope import _kernels

if TYPE_CHECKING:
    from bandits.ope.support import SupportStats

__all__ = [
    "PROB_SUM_TOL",
    "LoggedData",
    "as_action_array",
    "as_float_array",
    "check_finite",
    "resolve_reward_range",
    "validate_logged_data",
]

PROB_SUM_TOL = 1e-6
"""Rows of ``target_probs`` / ``logging_probs`` must sum to 1 within this absolute tolerance;
``logging_probs[i, action[i]]`` must match ``propensity[i]`` within it too."""

_MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class LoggedData:
    """Validated logged data (no copies of float64 inputs).

    Attributes
    ----------
    reward : (n,) float64
    action : (n,) integer, values in ``[0, K)``
    propensity : (n,) float64 in (0, 1], or ``None`` when not given (DM only)
    target_probs : (n, K) float64, rows are probability vectors (``pi``)
    reward_hat : (n, K) float64 or ``None`` (``q``)
    logging_probs : (n, K) float64 or ``None`` (full logging distribution, optional)
    reward_range : declared ``(r_min, r_max)`` or ``None`` (then inferred, see
        :func:`resolve_reward_range`)
    support_floor : logging probability below which an action counts as unsupported, or
        ``None`` for :func:`bandits.ope.support.default_floor`
    check_propensities : run the per-action propensity check (off for estimated propensities)
    """

    reward: NDArray[np.float64]
    action: NDArray[np.integer]
    propensity: NDArray[np.float64] | None
    target_probs: NDArray[np.float64]
    reward_hat: NDArray[np.float64] | None
    logging_probs: NDArray[np.float64] | None
    reward_range: tuple[float, float] | None = None
    support_floor: float | None = None
    check_propensities: bool = True

    @property
    def n(self) -> int:
        """Number of logged rounds."""
        return int(self.reward.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions ``K`` (columns of ``target_probs``)."""
        return int(self.target_probs.shape[1])

    def take_logged(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        """``matrix[i, a_i]`` for an (n, K) array, shape (n,) (one compiled pass)."""
        return _kernels.take_logged(matrix, self.action)

    @cached_property
    def target_prob_logged(self) -> NDArray[np.float64]:
        """``pi[i, a_i]``, shape (n,)."""
        return self.take_logged(self.target_probs)

    @cached_property
    def importance_weights(self) -> NDArray[np.float64]:
        """``w_i = pi[i, a_i] / p_i``, shape (n,). Requires ``propensity``."""
        if self.propensity is None:
            raise DataError("propensity is required to compute importance weights")
        return _kernels.importance_weights(self.target_probs, self.action, self.propensity)

    @cached_property
    def reward_hat_logged(self) -> NDArray[np.float64]:
        """``q[i, a_i]``, shape (n,). Requires ``reward_hat``."""
        if self.reward_hat is None:
            raise DataError("reward_hat is required")
        return self.take_logged(self.reward_hat)

    @cached_property
    def direct_method_terms(self) -> NDArray[np.float64]:
        """``sum_k pi[i, k] * q[i, k]``, shape (n,). Requires ``reward_hat``."""
        if self.reward_hat is None:
            raise DataError("reward_hat is required")
        return _kernels.row_dot(self.target_probs, self.reward_hat)

    @cached_property
    def weight_sums(self) -> tuple[float, float, float]:
        """``(sum w, sum w^2, max w)`` of the importance weights. Requires ``propensity``."""
        w = self.importance_weights
        return float(np.sum(w)), float(np.einsum("i,i->", w, w)), float(w.max())

    @cached_property
    def weight_reward_sums(self) -> NDArray[np.float64]:
        """``(Σ w, Σ w², Σ w r, Σ w² r)`` (4,) of the raw importance weights (score floor)."""
        s_w, s_w2, _ = self.weight_sums
        wr = self.weighted_rewards
        return np.array([s_w, s_w2, float(np.sum(wr)), float(np.dot(self.importance_weights, wr))])

    @cached_property
    def residuals(self) -> NDArray[np.float64]:
        """``r_i - q[i, a_i]``, shape (n,). Requires ``reward_hat``."""
        if self.reward_hat is None:
            raise DataError("reward_hat is required")
        return _kernels.residuals(self.reward, self.reward_hat, self.action)

    @cached_property
    def weighted_rewards(self) -> NDArray[np.float64]:
        """``w_i r_i`` (IPS / SNIPS), shape (n,). Requires ``propensity``."""
        return self.importance_weights * self.reward

    @cached_property
    def weighted_residuals(self) -> NDArray[np.float64]:
        """``w_i (r_i - q[i, a_i])`` (SNDR, SwitchDR), shape (n,)."""
        if self.reward_hat is None:
            raise DataError("reward_hat is required")
        return _kernels.weighted_residuals(
            self.importance_weights, self.reward, self.reward_hat, self.action
        )

    @cached_property
    def doubly_robust_terms(self) -> NDArray[np.float64]:
        """``sum_k pi[i, k] q[i, k] + w_i (r_i - q[i, a_i])`` (DR), shape (n,)."""
        if self.reward_hat is None:
            raise DataError("reward_hat is required")
        return _kernels.doubly_robust_terms(
            self.direct_method_terms,
            self.importance_weights,
            self.reward,
            self.reward_hat,
            self.action,
        )

    @cached_property
    def action_counts(self) -> NDArray[np.int64]:
        """``(K,)`` how often each action was logged (treat as read-only)."""
        return np.bincount(self.action, minlength=self.n_actions).astype(np.int64, copy=False)

    @property
    def floor(self) -> float:
        """The support floor in force (``support_floor`` or ``0.1 / K``)."""
        from bandits.ope.support import default_floor

        return default_floor(self.n_actions) if self.support_floor is None else self.support_floor

    @cached_property
    def support(self) -> SupportStats:
        """Support statistics of the target on these rows (shared by every estimator).
        Requires ``propensity``."""
        from bandits.ope.support import SupportStats

        if self.propensity is None:
            raise DataError("propensity is required for support statistics")
        base = 0.0 if self.reward_range is None else float(self.reward_range[0])
        return SupportStats.compute(
            reward=self.reward,
            action=self.action,
            propensity=self.propensity,
            target_probs=self.target_probs,
            target_prob_logged=self.target_prob_logged,
            logging_probs=self.logging_probs,
            floor=self.floor,
            success_base=base,
            check_propensities=self.check_propensities,
        )


def resolve_reward_range(
    declared: tuple[float, float] | None, observed_min: float, observed_max: float
) -> tuple[float, float]:
    """The reward range intervals and bounds use: ``declared`` if given; else ``[0, 1]`` when
    every observed reward lies in it (clicks, conversions, rates), else the observed
    ``[min, max]``."""
    if declared is not None:
        return float(declared[0]), float(declared[1])
    if observed_min >= 0.0 and observed_max <= 1.0:
        return 0.0, 1.0
    return float(observed_min), float(observed_max)


def _check_reward_range(reward_range: object, r: NDArray[np.float64]) -> tuple[float, float] | None:
    if reward_range is None:
        return None
    try:
        lo, hi = (float(v) for v in reward_range)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise DataError(
            f"reward_range must be a pair (min, max) of numbers, got {reward_range!r}"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise DataError(f"reward_range must be finite with min < max, got ({lo}, {hi})")
    if not (r.min() >= lo and r.max() <= hi):
        raise _fail(
            "reward",
            f"must lie in the declared reward_range [{lo:g}, {hi:g}]",
            (r < lo) | (r > hi),
            r,
        )
    return lo, hi


def _take_logged(matrix: NDArray[np.float64], action: NDArray[np.integer]) -> NDArray[np.float64]:
    """``matrix[i, action[i]]`` for every row, shape (n,)."""
    return np.take_along_axis(matrix, action[:, None], axis=1)[:, 0]


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return str(value)


def _fail(
    name: str, condition: str, bad_rows: ArrayLike, values: NDArray, label: str = "values"
) -> DataError:
    """Build the one-line error for rows where ``bad_rows`` is True.

    ``values`` has one entry per row (shape (n,)) and is shown for the reported rows.
    """
    rows = np.flatnonzero(bad_rows)
    shown = rows[:_MAX_ROWS_SHOWN]
    more = f" and {rows.size - shown.size} more" if rows.size > shown.size else ""
    vals = ", ".join(_fmt(v) for v in values[shown].tolist())
    row_list = ", ".join(str(int(i)) for i in shown)
    return DataError(f"{name} {condition}: rows [{row_list}]{more} ({label} {vals})")


def _first_bad_entry(matrix: NDArray, bad: NDArray[np.bool_]) -> NDArray:
    """For each row, the first entry flagged in the 2-D mask ``bad`` (any entry if none)."""
    return np.take_along_axis(matrix, np.argmax(bad, axis=1)[:, None], axis=1)[:, 0]


def as_float_array(x: ArrayLike, name: str, ndim: int) -> NDArray[np.float64]:
    """``np.asarray(x)`` as float64 with ``ndim`` dimensions (no copy if already float64)."""
    arr = np.asarray(x)
    if arr.dtype != np.float64:
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    if arr.ndim != ndim:
        expected = "(n,)" if ndim == 1 else "(n, K)" if ndim == 2 else f"{ndim}-D"
        raise DataError(f"{name} must have shape {expected}, got shape {arr.shape}")
    return arr


def check_finite(x: NDArray[np.float64], name: str) -> None:
    """Raise if ``x`` (1-D or 2-D) has a NaN or infinite entry."""
    if np.isfinite(np.sum(x)):  # one pass; NaN/inf propagate (overflow falls through below)
        return
    bad = ~np.isfinite(x)
    if bad.ndim == 1:
        if bad.any():
            raise _fail(name, "must be finite", bad, x)
        return
    bad_rows = bad.any(axis=1)
    if bad_rows.any():
        raise _fail(name, "must be finite", bad_rows, _first_bad_entry(x, bad))


def as_action_array(action: ArrayLike, n_actions: int, name: str = "action") -> NDArray[np.integer]:
    """Validate ``action`` as a 1-D integer array with values in ``[0, n_actions)``.

    Integer dtypes are used as is; float arrays are accepted if every entry is integral.
    """
    arr = np.asarray(action)
    if arr.ndim != 1:
        raise DataError(f"{name} must have shape (n,), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        integral = np.isfinite(arr) & (arr == np.round(arr))
        if not integral.all():
            raise _fail(name, "must hold integer action indices", ~integral, arr)
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise DataError(f"{name} must be an integer array of action indices, got dtype {arr.dtype}")
    if arr.dtype == np.uint64:  # np.bincount / indexing cannot take uint64 safely
        arr = arr.astype(np.int64)  # values >= 2**63 wrap negative and fail the range check
    if arr.size and not (arr.min() >= 0 and arr.max() < n_actions):
        bad = (arr < 0) | (arr >= n_actions)
        raise _fail(name, f"must be in [0, {n_actions}) (K = {n_actions} actions)", bad, arr)
    return arr


def _check_probability_matrix(x: NDArray[np.float64], name: str) -> None:
    """Entries finite and >= 0, rows summing to 1 within ``PROB_SUM_TOL``.

    (Together these imply entries <= 1 + ``PROB_SUM_TOL``; no separate max pass is needed.)
    Valid input costs one compiled pass; the numpy checks below only run to locate problems.
    """
    if _kernels.probability_rows_ok(x, 1.0 - PROB_SUM_TOL, 1.0 + PROB_SUM_TOL):
        return
    if not x.min() >= 0.0:  # NaN propagates through min and fails the comparison
        bad = ~(x >= 0.0)
        raise _fail(name, "must be finite and >= 0", bad.any(axis=1), _first_bad_entry(x, bad))
    row_sums = np.einsum("ij->i", x)
    if not (row_sums.min() >= 1.0 - PROB_SUM_TOL and row_sums.max() <= 1.0 + PROB_SUM_TOL):
        bad_rows = np.abs(row_sums - 1.0) > PROB_SUM_TOL
        raise _fail(name, f"rows must sum to 1 (tol {PROB_SUM_TOL:g})", bad_rows, row_sums, "sums")


def _check_length(x: NDArray, name: str, n: int) -> None:
    if x.shape[0] != n:
        raise DataError(f"{name} has {x.shape[0]} rows but reward has {n}")


def validate_logged_data(
    *,
    reward: ArrayLike,
    action: ArrayLike,
    propensity: ArrayLike | None,
    target_probs: ArrayLike,
    reward_hat: ArrayLike | None = None,
    logging_probs: ArrayLike | None = None,
    require_propensity: bool = True,
    require_reward_hat: bool = False,
    estimator: str = "estimator",
    reward_range: tuple[float, float] | None = None,
    support_floor: float | None = None,
    check_propensities: bool = True,
) -> LoggedData:
    """Check shapes and values of logged data; return it as a :class:`LoggedData`.

    Shapes: ``reward``, ``action``, ``propensity`` (n,); ``target_probs``, ``reward_hat``,
    ``logging_probs`` (n, K), n >= 1.

    Rules: all values finite; ``propensity`` in (0, 1]; ``action`` integer in [0, K);
    ``target_probs`` and ``logging_probs`` entries >= 0 with rows summing to 1 within
    ``PROB_SUM_TOL`` (hence entries <= 1 + ``PROB_SUM_TOL``). When ``logging_probs`` is
    given, ``logging_probs[i, action[i]]`` must
    equal ``propensity[i]`` (within ``PROB_SUM_TOL``); if ``propensity`` is omitted it is taken
    from ``logging_probs`` and must then be > 0. A declared ``reward_range`` must contain every
    reward; ``support_floor`` must be in (0, 1).

    Raises
    ------
    ValueError
        One line naming the argument and the first offending rows.
    """
    r = as_float_array(reward, "reward", 1)
    n = r.shape[0]
    if n == 0:
        raise DataError("reward must be non-empty (n >= 1 logged rounds)")
    pi = as_float_array(target_probs, "target_probs", 2)
    _check_length(pi, "target_probs", n)
    k = pi.shape[1]
    if k == 0:
        raise DataError("target_probs must have at least one action column (K >= 1)")
    a = as_action_array(action, k)
    _check_length(a, "action", n)
    p = None
    if propensity is not None:
        p = as_float_array(propensity, "propensity", 1)
        _check_length(p, "propensity", n)
    q = None
    if reward_hat is not None:
        q = as_float_array(reward_hat, "reward_hat", 2)
        if q.shape != pi.shape:
            raise DataError(
                f"reward_hat must have the shape of target_probs {pi.shape}, got {q.shape}"
            )
    elif require_reward_hat:
        raise DataError(f"reward_hat (shape (n, K)) is required by {estimator}")
    lp = None
    if logging_probs is not None:
        lp = as_float_array(logging_probs, "logging_probs", 2)
        if lp.shape != pi.shape:
            raise DataError(
                f"logging_probs must have the shape of target_probs {pi.shape}, got {lp.shape}"
            )

    check_finite(r, "reward")
    if p is not None and not (p.min() > 0.0 and p.max() <= 1.0):
        raise _fail("propensity", "must be in (0, 1]", ~((p > 0.0) & (p <= 1.0)), p)
    _check_probability_matrix(pi, "target_probs")
    if q is not None:
        check_finite(q, "reward_hat")
    if lp is not None:
        _check_probability_matrix(lp, "logging_probs")
        lp_logged = _take_logged(lp, a)
        if p is None:
            if not lp_logged.min() > 0.0:
                raise _fail(
                    "logging_probs", "must be > 0 at the logged action", lp_logged <= 0.0, lp_logged
                )
            p = lp_logged
        else:
            gap = np.abs(lp_logged - p)
            if not gap.max() <= PROB_SUM_TOL:
                raise _fail(
                    "logging_probs",
                    "at the logged action must equal propensity",
                    gap > PROB_SUM_TOL,
                    lp_logged,
                )
    if p is None and require_propensity:
        raise DataError(f"propensity (shape (n,)) is required by {estimator}")
    declared = _check_reward_range(reward_range, r)
    if support_floor is not None and not (
        isinstance(support_floor, int | float) and 0.0 < float(support_floor) < 1.0
    ):
        raise DataError(f"support_floor must be a number in (0, 1), got {support_floor!r}")
    return LoggedData(
        reward=r,
        action=a,
        propensity=p,
        target_probs=pi,
        reward_hat=q,
        logging_probs=lp,
        reward_range=declared,
        support_floor=None if support_floor is None else float(support_floor),
        check_propensities=bool(check_propensities),
    )
