"""Logs without (trustworthy) propensities: estimate the logging policy, detect deterministic
loggers, and check logged propensities against the log's own action frequencies.

Three tools, all vectorised (no Python loop over rows):

* :func:`estimate_logging_policy` -- cross-fitted multinomial logistic regression of the
  logged action on the context features, ``mu_hat (n, K)``, optionally with a term for the
  modal action of each cell of a few context columns (:func:`fit_logging_policy_on_log`
  finds the columns and is what :func:`bandits.data.load_log` uses);
* :func:`detect_deterministic` -- the smallest set of (by default at most two) context
  columns given which the logged action is (almost) a function of the context;
* :func:`check_logged_propensities` -- whether a logged ``propensity`` column agrees with
  ``mu_hat`` at the logged action, beyond sampling error.

Shapes: ``X`` (n, d), ``action`` (n,) ints in ``[0, K)``, ``propensity`` (n,),
``mu_hat`` (n, K) rows summing to 1.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from bandits.ope.validation import as_action_array, as_float_array, check_finite

__all__ = [
    "CellColumn",
    "DeterminismReport",
    "LoggingPolicyFit",
    "PropensityCheck",
    "check_logged_propensities",
    "detect_deterministic",
    "estimate_logging_policy",
    "fit_logging_policy",
    "fit_logging_policy_on_log",
    "fit_rows_cap",
]

#: Probability floor for actions seen in the log (before renormalising each row).
FLOOR = 1e-6
#: ``detect_deterministic``: the log "looks deterministic" when this share of rows is explained.
DETERMINISTIC_SHARE = 0.95

_MAX_ITER = 300  # L-BFGS iterations per fold (the first fold; later folds start warm)
_FIT_BUDGET = 3_000_000  # rows x logged actions fitted per fold (see fit_rows_cap)
_MIN_FIT_ROWS = 30_000
_EXHAUSTIVE = 2  # detect_deterministic tries every set of up to 2 columns, then steps forward
_GTOL = 1e-6
_FTOL = 1e-10


# ---------------------------------------------------------------- logging-policy model


def fit_rows_cap(n_logged_actions: int) -> int:
    """Rows used to fit each fold's model: ``max(30_000, 3_000_000 // m)`` for ``m`` logged
    actions (250k rows at K = 12, 30k at K = 100). One L-BFGS step costs ``O(rows·d·m)``, so
    this bounds the fitting time whatever ``n``; every row is still predicted."""
    return max(_MIN_FIT_ROWS, _FIT_BUDGET // max(int(n_logged_actions), 1))


@dataclass(frozen=True)
class _Design:
    """The fitting inputs of one model: ``xt`` (d, n) standardised features (one column per
    row, so the per-row max / sum over classes are whole-array operations; d may be 0),
    ``y`` (n,) class codes in ``[0, m)`` and optional cell codes ``cell`` (n,) in ``[0, g)``.

    Logits ``z_ik = W[k]·x_i + b_k + beta·[k == mode(c_i)]``, the last term only with cells:
    ``mode(c)`` is the most frequent class of cell ``c`` among the fitting rows when it is
    *stable* (``c1 - 1 > c2`` for its largest counts, so removing any one row leaves it the
    strict mode: the term is as honest on the fitting rows as on new ones), else none.
    Parameters are packed as ``theta = [W (m, d) row-major, b (m,), beta (0 or 1,)]``.
    """

    xt: NDArray[np.float64]
    y: NDArray[np.intp]
    m: int
    cell: NDArray[np.intp] | None = None
    g: int = 0

    @property
    def d(self) -> int:
        return int(self.xt.shape[0])

    @property
    def size(self) -> int:
        """Length of ``theta``."""
        return self.m * (self.d + 1) + (self.cell is not None)

    def unpack(self, theta: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """Views ``(W (m, d), b (m,), beta (0 or 1,))`` into ``theta``."""
        m, d = self.m, self.d
        return theta[: m * d].reshape(m, d), theta[m * d : m * (d + 1)], theta[m * (d + 1) :]

    def modes(self, rows: NDArray[np.intp]) -> NDArray[np.intp]:
        """``(g,)`` stable most frequent class of each cell among ``rows`` (-1: none)."""
        assert self.cell is not None
        counts = np.bincount(self.cell[rows] * self.m + self.y[rows], minlength=self.g * self.m)
        counts = counts.reshape(self.g, self.m)
        top2 = -np.partition(-counts, 1, axis=1)[:, :2]  # (g, 2): c1 >= c2
        return np.where(top2[:, 0] - 1 > top2[:, 1], counts.argmax(axis=1), -1)

    def logits(
        self, theta: NDArray[np.float64], xt: NDArray[np.float64], mode_of_row: NDArray[np.intp]
    ) -> NDArray[np.float64]:
        """``z (m, r)`` for features ``xt`` (d, r) and each row's cell mode (r,) (or empty)."""
        w, b, beta = self.unpack(theta)
        z = w @ xt
        z += b[:, None]
        if beta.size:
            has = np.flatnonzero(mode_of_row >= 0)
            z[mode_of_row[has], has] += beta[0]
        return z

    def _mode_of_row(
        self, mode: NDArray[np.intp] | None, rows: NDArray[np.intp]
    ) -> NDArray[np.intp]:
        if mode is None or self.cell is None:
            return np.zeros(0, dtype=np.intp)
        return mode[self.cell[rows]]

    def predict(
        self, theta: NDArray[np.float64], mode: NDArray[np.intp] | None, rows: NDArray[np.intp]
    ) -> NDArray[np.float64]:
        """Softmax probabilities ``(r, m)`` of ``rows`` (``mode`` from :meth:`fit`)."""
        z = self.logits(theta, self.xt[:, rows], self._mode_of_row(mode, rows))
        z -= z.max(axis=0)
        np.exp(z, out=z)
        z /= z.sum(axis=0)
        return z.T

    def fit(
        self, rows: NDArray[np.intp], alpha: float, start: NDArray[np.float64], max_iter: int
    ) -> tuple[NDArray[np.float64], NDArray[np.intp] | None]:
        """Penalised maximum likelihood on ``rows``::

            minimise  sum_i [logsumexp(z_i) - z_i[y_i]] + alpha/2 (||W||² + beta²)

        (intercepts ``b`` unpenalised), divided by ``r`` for the optimiser (same minimiser),
        by L-BFGS from ``start``. Returns ``(theta, mode)`` (``mode`` None without cells).
        """
        # scipy's L-BFGS-B: a robust quasi-Newton solver for this smooth convex problem (the
        # Hessian, (m·d)² entries, is too big for Newton at K = 100); loss and gradient are
        # computed below with numpy.
        from scipy.optimize import minimize

        m, d = self.m, self.d
        mode = self.modes(rows) if self.cell is not None else None
        mode_of_row = self._mode_of_row(mode, rows)
        has = np.flatnonzero(mode_of_row >= 0)
        r = int(rows.size)
        xt, y = self.xt[:, rows], self.y[rows]
        x = xt.T  # (r, d) view
        cols = np.arange(r)
        lam = np.full(self.size, float(alpha) / r)
        lam[m * d : m * (d + 1)] = 0.0  # intercepts unpenalised

        def loss_grad(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            z = self.logits(theta, xt, mode_of_row)
            z -= z.max(axis=0)
            lse = np.log(np.exp(z).sum(axis=0))  # (r,)
            loss = float(lse.sum() - z[y, cols].sum()) / r + 0.5 * float(lam @ (theta * theta))
            z -= lse
            np.exp(z, out=z)  # probabilities
            z[y, cols] -= 1.0  # d loss_i / d z_i
            z /= r
            grad = lam * theta
            gw, gb, gbeta = self.unpack(grad)
            gw += z @ x
            gb += z.sum(axis=1)
            if gbeta.size:
                gbeta += z[mode_of_row[has], has].sum()
            return loss, grad

        with _one_blas_thread():
            res = minimize(
                loss_grad,
                start,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": int(max_iter), "gtol": _GTOL, "ftol": _FTOL},
            )
        return np.asarray(res.x, dtype=np.float64), mode


def _one_blas_thread() -> AbstractContextManager[object]:
    """Limit BLAS to one thread while fitting: the products are small (``m·d`` by ``r``), and
    a threaded BLAS on a busy machine spends more time waiting than computing (on 2 cores
    with other jobs running, a 20k-row fit took 54 s wall with OpenBLAS's threads and 0.9 s
    CPU with one). threadpoolctl comes with scikit-learn; without it, nothing is limited."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _check_int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class LoggingPolicyFit:
    """Result of :func:`fit_logging_policy` / :func:`fit_logging_policy_on_log`.

    Attributes:
        probs: ``(n, K)`` estimated logging policy (see :func:`estimate_logging_policy`).
        model: the model kept: ``"linear"`` (softmax of ``W x + b``), ``"cells"`` (``b`` plus
            a shared bonus ``beta`` for the modal action of the row's cell) or
            ``"linear+cells"`` (both).
        log_loss: mean log loss ``-mean_i log mu_hat(a_i | x_i)`` of every model tried on
            the first fold's held-out rows (the smallest wins; in-sample when ``folds=1``).
        fit_rows: rows each fold's model was fitted on (at most).
        cells: the columns that made the cells (:func:`fit_logging_policy_on_log`), else ().
    """

    probs: NDArray[np.float64]
    model: str
    log_loss: dict[str, float]
    fit_rows: int
    cells: tuple[CellColumn, ...] = ()

    def describe(self) -> str:
        """One line, e.g. "cells model on a, b ≤ 7 (out-of-fold log loss 1.25; linear 1.48)"."""
        on = (
            f" on {_names([c.label for c in self.cells])}"
            if self.cells and "cells" in self.model
            else ""
        )
        others = "; ".join(f"{k} {v:.4g}" for k, v in self.log_loss.items() if k != self.model)
        return (
            f"{self.model} model{on} (out-of-fold log loss {self.log_loss[self.model]:.4g}"
            f"{'; ' + others if others else ''})"
        )


def fit_logging_policy(
    X: ArrayLike,
    action: ArrayLike,
    n_actions: int,
    *,
    cells: ArrayLike | None = None,
    folds: int = 5,
    seed: int = 0,
    alpha: float = 1.0,
    floor: float = FLOOR,
    max_fit_rows: int | None = None,
) -> LoggingPolicyFit:
    """:func:`estimate_logging_policy` with its diagnostics (same arguments)."""
    x_raw = as_float_array(X, "X", 2)
    check_finite(x_raw, "X")
    k = _check_int(n_actions, "n_actions", 1)
    a = as_action_array(action, k)
    n = int(a.shape[0])
    if x_raw.shape[0] != n:
        raise ValueError(f"X has {x_raw.shape[0]} rows but action has {n}")
    if n == 0:
        raise ValueError("cannot estimate a logging policy from 0 rows")
    n_folds = _check_int(folds, "folds", 1)
    if n_folds > n:
        raise ValueError(f"folds must be <= n = {n}, got {n_folds}")
    if not (isinstance(alpha, numbers.Real) and float(alpha) > 0):
        raise ValueError(f"alpha must be a number > 0, got {alpha!r}")
    if not (isinstance(floor, numbers.Real) and 0.0 <= float(floor) < 1.0):
        raise ValueError(f"floor must be a number in [0, 1), got {floor!r}")
    cell: NDArray[np.intp] | None = None
    g = 0
    if cells is not None:
        c = np.asarray(cells)
        if c.shape != (n,) or c.dtype.kind not in "iub":
            raise ValueError(
                f"cells must be integer codes of shape ({n},), got {c.dtype} {c.shape}"
            )
        levels, inverse = np.unique(c, return_inverse=True)
        cell, g = inverse.astype(np.intp).ravel(), int(levels.size)

    counts = np.bincount(a, minlength=k)
    logged = np.flatnonzero(counts)  # (m,) the actions seen
    m = int(logged.size)
    cap = fit_rows_cap(m) if max_fit_rows is None else _check_int(max_fit_rows, "max_fit_rows", 1)
    out = np.zeros((n, k), dtype=np.float64)
    if m == 1:
        out[:, logged[0]] = 1.0
        return LoggingPolicyFit(out, "linear", {"linear": 0.0}, min(n, cap))
    code = np.empty(k, dtype=np.intp)
    code[logged] = np.arange(m)
    y = code[a]  # (n,) class codes in [0, m)

    mean = x_raw.mean(axis=0)
    sd = x_raw.std(axis=0)
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
    xt = np.ascontiguousarray(((x_raw[:, keep] - mean[keep]) / sd[keep]).T)  # (d', n)
    designs = {"linear": _Design(xt, y, m)}
    if cell is not None and g > 1:
        designs["cells"] = _Design(np.zeros((0, n)), y, m, cell, g)
        designs["linear+cells"] = _Design(xt, y, m, cell, g)

    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.intp)
    fold[rng.permutation(n)] = np.arange(n) % n_folds
    thetas = {}
    for name, design in designs.items():
        theta = np.zeros(design.size)
        _, b, _ = design.unpack(theta)
        b[:] = np.log(counts[logged] / n)  # start: the marginal frequencies
        thetas[name] = theta
    log_loss: dict[str, float] = {}
    best = "linear"
    fit_rows = 0
    for f in range(n_folds):  # a loop over folds, not rows
        held = np.flatnonzero(fold == f) if n_folds > 1 else np.arange(n)
        train = np.flatnonzero(fold != f) if n_folds > 1 else held
        if train.size > cap:
            train = np.sort(rng.choice(train, size=cap, replace=False))
        fit_rows = max(fit_rows, int(train.size))
        # the first fold fits every model and keeps the best on its held-out rows; the
        # other folds fit that one only, starting from the previous fold's solution
        for name in designs if f == 0 else (best,):
            design = designs[name]
            if name == "linear+cells" and f == 0:  # start from the two simpler fits
                w, b, beta = design.unpack(thetas[name])
                w[:] = designs["linear"].unpack(thetas["linear"])[0]
                _, b[:], beta[:] = designs["cells"].unpack(thetas["cells"])
            max_iter = _MAX_ITER if f == 0 else _MAX_ITER // 2
            thetas[name], mode = design.fit(train, float(alpha), thetas[name], max_iter)
            p = _floored(design.predict(thetas[name], mode, held), float(floor))
            if f == 0:
                log_loss[name] = float(-np.log(p[np.arange(held.size), y[held]]).mean())
                if log_loss[name] > min(log_loss.values()):
                    continue
                best = name
            out[held[:, None], logged] = p
    return LoggingPolicyFit(out, best, log_loss, fit_rows)


def _floored(p: NDArray[np.float64], floor: float) -> NDArray[np.float64]:
    """``p`` (r, m) clipped below at ``floor``, rows renormalised to sum to 1 (in place)."""
    np.maximum(p, floor, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


def estimate_logging_policy(
    X: ArrayLike,
    action: ArrayLike,
    n_actions: int,
    *,
    cells: ArrayLike | None = None,
    folds: int = 5,
    seed: int = 0,
    alpha: float = 1.0,
    floor: float = FLOOR,
    max_fit_rows: int | None = None,
) -> NDArray[np.float64]:
    """Estimated logging policy ``mu_hat (n, K)``: cross-fitted multinomial logistic regression.

    Model, for the ``m`` actions that appear in the log::

        mu_hat(k | x_i) = exp(z_ik) / sum_j exp(z_ij),   z_ik = x_i·w_k + b_k,

    fitted by maximum likelihood with an L2 penalty ``alpha/2 · ||W||²`` added to the summed
    log loss (intercepts ``b`` unpenalised): sklearn's ``LogisticRegression(C=1/alpha)``
    objective. Columns of ``X`` are standardised first (mean 0, sd 1; constant columns, e.g.
    an intercept, dropped) so the penalty treats every feature alike and the solver is well
    conditioned.

    ``cells`` (optional ``(n,)`` integer codes, e.g. the cells of the columns
    :func:`detect_deterministic` found, as :func:`fit_logging_policy_on_log` does): two
    more models are tried, ``z_ik = b_k + beta·[k = mode(c_i)]`` ("cells") and that plus
    ``x_i·w_k`` ("linear+cells"), where ``mode(c)`` is the most frequent action of cell ``c``
    in the fitting rows (when removing any one row keeps it the strict mode) and ``beta`` one
    shared coefficient. This is the shape of a rule engine with exploration (ε-greedy: one
    action per cell at ``1 - ε + ε/K``, the others at ``ε/K``) including thresholds and
    interactions a model linear in ``X`` cannot express, with ``m + 1`` parameters, so the
    small probabilities that IPS divides by are pooled over cells rather than estimated
    cell by cell (per-cell, per-action intercepts made them noisy enough to bias IPS by 2-4
    standard errors in our simulations). Every model is fitted on the first fold; the one
    with the smallest log loss on that fold's held-out rows is used for all folds
    (:func:`fit_logging_policy` says which).

    Cross-fitting: rows are split into ``folds`` folds by a random permutation from
    ``numpy.random.default_rng(seed)``; fold f is predicted by the model fitted on the other
    folds (each fold's fit starts from the previous fold's solution), so ``mu_hat[i]`` does not
    depend on row ``i``'s own action. ``folds=1`` fits and predicts all rows in-sample.
    Each fold's model is fitted on at most ``max_fit_rows`` of its training rows, a
    deterministic random subsample (default :func:`fit_rows_cap`: ``max(30_000,
    3_000_000 // m)``, e.g. 250k rows at K = 12); every row is predicted.

    Why our own model rather than sklearn's ``LogisticRegression`` (which gives the same
    probabilities without cells, see the tests): every fold must keep the log's ``m`` actions
    (a fold's training rows may miss a rare action, whose column sklearn would drop), the
    cell-mode term is not a column of ``X``, and warm starts across folds save time. The
    optimiser is scipy's L-BFGS; the loss and gradient are numpy.

    Args:
        X: ``(n, d)`` context features (e.g. ``data.problem_spec().contexts(data.frame).X``).
        action: ``(n,)`` logged action indices in ``[0, n_actions)``.
        n_actions: ``K``, the catalog size.
        cells: optional ``(n,)`` integer cell codes (see above).
        folds: number of cross-fitting folds (``1`` = no cross-fitting).
        seed: seeds the fold split and the fitting subsample.
        alpha: L2 penalty (``> 0``).
        floor: lower bound on the probability of every action seen in the log.
        max_fit_rows: cap on fitting rows per fold (None: :func:`fit_rows_cap`).

    Returns:
        ``(n, K)`` float64: actions never logged have probability exactly 0; the others at
        least ``floor`` (clipped, then each row renormalised to sum to 1).
    """
    return fit_logging_policy(
        X,
        action,
        n_actions,
        cells=cells,
        folds=folds,
        seed=seed,
        alpha=alpha,
        floor=floor,
        max_fit_rows=max_fit_rows,
    ).probs


def fit_logging_policy_on_log(
    frame: pl.DataFrame,
    X: ArrayLike,
    action: ArrayLike,
    n_actions: int,
    candidate_columns: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    alpha: float = 1.0,
    max_columns: int = 3,
) -> LoggingPolicyFit:
    """The logging policy of a log: cells, then :func:`fit_logging_policy`.

    The cells are those of the columns that best explain the logged action
    (:func:`detect_deterministic` with ``select="best"`` over ``candidate_columns``, up to
    ``max_columns`` columns), so a rule engine's thresholds and interactions are captured
    when they help; out-of-fold log loss decides between the linear model on ``X``
    (``(n, d)``), the cell model and both. Returns ``probs (n, K)`` with diagnostics.
    """
    report = detect_deterministic(
        frame, np.asarray(action), candidate_columns, max_columns=max_columns, select="best"
    )
    cells = report.cell_codes(frame) if report.cells else None
    fit = fit_logging_policy(X, action, n_actions, cells=cells, folds=folds, seed=seed, alpha=alpha)
    return dataclasses.replace(fit, cells=report.cells)


# ---------------------------------------------------------------- deterministic loggers


@dataclass(frozen=True)
class CellColumn:
    """How one context column splits the rows into cells.

    ``kind``: ``"levels"`` (one cell per value; null is a value), ``"bins"`` (quantile bins
    with inner ``edges``: bin ``j`` holds ``edges[j-1] < x <= edges[j]``) or ``"split"`` (two
    cells, ``x <= cut`` and ``x > cut``: a rule's threshold). Nulls / NaN get a cell of
    their own. Level codes are dense ranks of the values in the frame they are computed on.
    """

    name: str
    kind: str
    cut: float | None = None
    edges: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        """``name``, or ``"name ≤ cut"`` for a split."""
        return f"{self.name} ≤ {self.cut:g}" if self.kind == "split" else self.name

    def codes(self, frame: pl.DataFrame) -> NDArray[np.int64]:
        """Cell code ``(n,)`` of each row of ``frame``."""
        s = frame[self.name]
        if self.kind == "levels":
            if _is_categorical_like(s.dtype):
                s = s.cast(pl.String)
            return s.rank("dense").fill_null(0).cast(pl.Int64).to_numpy()  # ranks from 1
        x = s.cast(pl.Float64).to_numpy()
        finite = np.isfinite(x)
        if self.kind == "split":
            codes = np.where(x <= float(self.cut), 1, 2).astype(np.int64)  # type: ignore[arg-type]
        else:
            codes = np.searchsorted(np.asarray(self.edges), x, side="left").astype(np.int64) + 1
        codes[~finite] = 0
        return codes


@dataclass(frozen=True)
class DeterminismReport:
    """Whether the logged action is (almost) a function of a few context columns.

    Attributes:
        columns: names of the smallest set of columns (``()``: one action whatever the
            context) whose cells explain at least ``threshold`` (0.95) of the rows, else of
            the set that explains the most.
        cells: how each of ``columns`` makes cells (:class:`CellColumn`, e.g. a threshold).
        share: leave-one-out share explained: the fraction of rows whose action is the strict
            mode of the *other* rows of its cell (cell = the rows sharing the values of
            ``columns``). Unlike the in-sample share it does not reward many small cells (a
            row alone in its cell is never explained), so it can compare sets fairly.
        in_sample_share: fraction of rows whose action equals the modal action of its cell.
        n_cells: number of non-empty cells.
        is_deterministic: ``share >= threshold``.
        message: one line, e.g. "the log looks deterministic given last_viewed_category and
            days_since_view ≤ 7 for 97% of rows".
        table: every set tried: ``columns`` (list of labels), ``n_cells``, ``share``,
            ``in_sample_share``, best first.
    """

    columns: tuple[str, ...]
    cells: tuple[CellColumn, ...]
    share: float
    in_sample_share: float
    n_cells: int
    is_deterministic: bool
    message: str
    table: pl.DataFrame

    def cell_codes(self, frame: pl.DataFrame) -> NDArray[np.int64]:
        """``(n,)`` int64 cell of each row of ``frame`` (the log the report was made on):
        the ``cells`` argument of :func:`estimate_logging_policy`."""
        return _combined([c.codes(frame) for c in self.cells], frame.height)


def _is_categorical_like(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Boolean) or isinstance(dtype, pl.Categorical | pl.Enum)


def _best_split(
    x: NDArray[np.float64], a: NDArray[np.int64], m: int, max_cuts: int = 255
) -> float | None:
    """The threshold ``t`` maximising the in-sample modal share of ``a`` (codes in ``[0, m)``)
    given ``x <= t`` vs ``x > t`` (None if no threshold beats no split); ``t`` is a value
    of ``x``.

    Candidate cuts: the distinct finite values; when there are more than ``max_cuts``,
    ``max_cuts`` quantiles first, then every distinct value between the quantiles around
    the best one. Each pass is one ``bincount`` of (value bin, action) and cumulative sums:
    ``O(n + cuts·m)``.
    """
    finite = np.isfinite(x)
    xs, acts = x[finite], a[finite]
    if xs.size == 0:
        return None
    none = np.zeros(m, dtype=np.int64)
    cuts = np.unique(xs)
    if cuts.size > max_cuts + 1:
        coarse = np.unique(np.quantile(xs, np.linspace(0.0, 1.0, max_cuts + 2)[1:-1]))
        j, _ = _scan(xs, acts, m, coarse, none, none)
        lo = coarse[j - 1] if j > 0 else -np.inf
        hi = coarse[j + 1] if j + 1 < coarse.size else np.inf
        inside = (xs > lo) & (xs <= hi)
        below = np.bincount(acts[xs <= lo], minlength=m)
        above = np.bincount(acts[xs > hi], minlength=m)
        xs, acts, cuts = xs[inside], acts[inside], np.unique(xs[inside])
    else:
        below = above = none
    if cuts.size < 2:
        return None
    j, explained = _scan(xs, acts, m, cuts, below, above)
    total = np.bincount(a[finite], minlength=m)
    if explained <= total.max():  # no better than one cell
        return None
    return float(cuts[j])


def _scan(
    xs: NDArray[np.float64],
    acts: NDArray[np.int64],
    m: int,
    cuts: NDArray[np.float64],
    below: NDArray[np.int64],
    above: NDArray[np.int64],
) -> tuple[int, int]:
    """Best cut index ``j`` (rows ``x <= cuts[j]`` vs the rest) and the rows it explains;
    ``below`` / ``above`` ``(m,)``: action counts of rows outside ``xs``, left / right of
    every cut."""
    bins = np.searchsorted(cuts, xs, side="left")  # bin j: cuts[j-1] < x <= cuts[j]
    counts = np.bincount(bins * m + acts, minlength=(cuts.size + 1) * m).reshape(-1, m)
    left = np.cumsum(counts, axis=0)[:-1] + below  # rows with x <= cuts[j]
    right = counts.sum(axis=0) + below + above - left
    explained = left.max(axis=1) + right.max(axis=1)
    j = int(np.argmax(explained))
    return j, int(explained[j])


def _encodings(
    s: pl.Series, a: NDArray[np.int64], m: int, max_levels: int, bins: int
) -> list[CellColumn]:
    """Candidate cell definitions of one column (none for unusable columns).

    Categorical-like columns (string / Categorical / Enum / boolean) with at most
    ``max_levels`` values: levels (more: an id, skipped). Numeric columns: levels if at most
    ``max_levels`` values, else ``bins`` quantile bins; plus, with more than two values, the
    best threshold (a rule's "days_since_view <= 7").
    """
    dtype = s.dtype
    distinct = s.n_unique()
    if _is_categorical_like(dtype):
        return [CellColumn(s.name, "levels")] if distinct <= max_levels else []
    if not dtype.is_numeric():
        return []
    out = []
    x = s.cast(pl.Float64).to_numpy()
    if distinct <= max_levels:
        out.append(CellColumn(s.name, "levels"))
    else:
        finite = x[np.isfinite(x)]
        if finite.size:
            q = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1])
            out.append(CellColumn(s.name, "bins", edges=tuple(np.unique(q).tolist())))
    if distinct > 2:
        cut = _best_split(x, a, m)
        if cut is not None:
            out.append(CellColumn(s.name, "split", cut=cut))
    return out


def _shares(cell: NDArray[np.int64], action: NDArray[np.int64]) -> tuple[float, float, int]:
    """(leave-one-out share, in-sample share, cells) of ``action`` given ``cell`` (both (n,)).

    One polars ``group_by`` of ``(cell, action)`` counts, then per cell the largest count
    ``c1``, the second largest ``c2`` (0 if none): in-sample explained rows are ``sum c1``;
    leave-one-out explained rows are ``sum c1 · [c1 - 1 > c2]`` (a row of the modal action,
    once removed, leaves that action the strict mode of the others; any other row is not the
    mode of the rest).
    """
    n = int(cell.shape[0])
    counts = (
        pl.DataFrame({"cell": cell, "action": action})
        .group_by("cell", "action")
        .len()
        .group_by("cell")
        .agg(
            pl.col("len").max().alias("c1"),
            pl.col("len").top_k(2).min().alias("c2_or_c1"),
            pl.len().alias("actions"),
        )
    )
    c1 = counts["c1"].to_numpy()
    c2 = np.where(counts["actions"].to_numpy() > 1, counts["c2_or_c1"].to_numpy(), 0)
    loo = float(c1[c1 - 1 > c2].sum()) / n
    return loo, float(c1.sum()) / n, int(counts.height)


def _combined(codes: Sequence[NDArray[np.int64]], n: int) -> NDArray[np.int64]:
    """One int64 cell code from several columns' codes (mixed radix; zeros for none)."""
    out = np.zeros(n, dtype=np.int64)
    for c in codes:
        out = out * (int(c.max()) + 1) + c
    return out


def _names(labels: Sequence[str]) -> str:
    return " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 2 else labels)


def detect_deterministic(
    frame: pl.DataFrame,
    action: ArrayLike,
    candidate_columns: Sequence[str],
    *,
    max_columns: int = 2,
    threshold: float = DETERMINISTIC_SHARE,
    max_levels: int = 200,
    bins: int = 16,
    select: str = "smallest",
) -> DeterminismReport:
    """Find the smallest set of context columns given which the logged action is (almost) a
    function of the context: a rule engine, or a policy that never explored.

    Sets of columns are scored by their leave-one-out share (see :class:`DeterminismReport`):
    every set of up to two columns, then (``max_columns`` > 2) forward steps adding one column
    to the best set of the size before. With ``select="smallest"`` the best set of the first
    size reaching ``threshold`` wins (sizes from 0, one action for everyone, upwards); if none
    does, or with ``select="best"``, the best set of any size is reported.

    How a column makes cells (:class:`CellColumn`): categorical-like columns (string /
    Categorical / Enum / boolean) and numeric ones with at most ``max_levels`` distinct
    values, one cell per value; numeric columns with more values, ``bins`` quantile bins;
    numeric columns also as two cells at their best threshold (the one maximising the share
    given that column alone), as a rule engine's "days_since_view <= 7". String columns with
    more than ``max_levels`` values (ids) and other types are skipped. Each set costs one
    polars ``group_by`` over the rows; a threshold, one ``bincount``.

    Args:
        frame: the log (``n`` rows; only ``candidate_columns`` are read).
        action: ``(n,)`` logged actions (integer codes).
        candidate_columns: columns to consider (e.g. ``data.context_columns``).
        max_columns: largest set size tried (the number of sets grows as ``C^max_columns``).
        threshold: share from which the log is reported deterministic.
        max_levels: columns with more distinct values are binned (numeric) or skipped.
        bins: quantile bins for high-cardinality numeric columns.
        select: ``"smallest"``: the smallest set reaching ``threshold`` (else the best);
            ``"best"``: the set with the highest share (ties: fewer cells), e.g. the cells
            for :func:`estimate_logging_policy`.

    Returns:
        :class:`DeterminismReport`.
    """
    a_raw = np.asarray(action)
    if a_raw.ndim != 1 or a_raw.shape[0] != frame.height:
        raise ValueError(f"action must have shape ({frame.height},), got shape {a_raw.shape}")
    if a_raw.shape[0] == 0:
        raise ValueError("cannot look for a deterministic logger in 0 rows")
    if a_raw.dtype.kind not in "iu":
        raise ValueError(f"action must hold integer codes, got dtype {a_raw.dtype}")
    levels, inverse = np.unique(a_raw, return_inverse=True)
    a = inverse.astype(np.int64).ravel()  # dense codes in [0, m)
    m = int(levels.size)
    size = _check_int(max_columns, "max_columns", 0)
    if select not in ("smallest", "best"):
        raise ValueError(f"select must be 'smallest' or 'best', got {select!r}")
    unknown = [c for c in candidate_columns if c not in frame.columns]
    if unknown:
        raise ValueError(f"candidate column(s) {', '.join(unknown)} not in the frame")
    encodings = [
        enc
        for name in dict.fromkeys(candidate_columns)
        for enc in _encodings(frame[name], a, m, max_levels, bins)
    ]
    codes = [enc.codes(frame) for enc in encodings]
    n = frame.height
    Scored = tuple[tuple[int, ...], float, float, int]  # (encodings, loo, in-sample, cells)
    rows: list[Scored] = []
    chosen: Scored | None = None
    previous: tuple[int, ...] = ()
    for r in range(min(size, len({e.name for e in encodings})) + 1):
        sets: Iterable[tuple[int, ...]]
        if r <= _EXHAUSTIVE:
            sets = itertools.combinations(range(len(encodings)), r)
        else:  # forward step: the best set of size r - 1 plus one more column
            sets = (
                (*previous, j)
                for j in range(len(encodings))
                if encodings[j].name not in {encodings[i].name for i in previous}
            )
        level: list[Scored] = []
        for idx in sets:
            if len({encodings[i].name for i in idx}) < r:
                continue  # two encodings of one column
            loo, ins, n_cells = _shares(_combined([codes[i] for i in idx], n), a)
            level.append((idx, loo, ins, n_cells))
        if not level:
            break
        level.sort(key=lambda t: (-t[1], t[3]))  # best share, then fewest cells
        rows += level
        previous = level[0][0]
        if chosen is None and select == "smallest" and level[0][1] >= threshold:
            chosen = level[0]
    rows.sort(key=lambda t: (-t[1], t[3]))
    best = chosen if chosen is not None else rows[0]
    table = pl.DataFrame(
        {
            "columns": [[encodings[i].label for i in t[0]] for t in rows],
            "n_cells": [t[3] for t in rows],
            "share": [t[1] for t in rows],
            "in_sample_share": [t[2] for t in rows],
        },
        schema={
            "columns": pl.List(pl.String),
            "n_cells": pl.Int64,
            "share": pl.Float64,
            "in_sample_share": pl.Float64,
        },
    )
    cells = tuple(encodings[i] for i in best[0])
    share = best[1]
    deterministic = share >= threshold
    pct = f"{math.floor(share * 100):.0f}%"
    labels = [c.label for c in cells]
    if deterministic and not cells:
        top = levels[int(np.bincount(a).argmax())]
        message = (
            f"the log looks deterministic: action {top} for {pct} of rows, whatever the context"
        )
    elif deterministic:
        message = f"the log looks deterministic given {_names(labels)} for {pct} of rows"
    else:
        plural = "s" if size != 1 else ""
        given = f"; the best, {_names(labels)}, explains {pct} of rows" if cells else ""
        message = (
            f"the log does not look deterministic given at most {size} context "
            f"column{plural}{given}"
        )
    return DeterminismReport(
        columns=tuple(c.name for c in cells),
        cells=cells,
        share=share,
        in_sample_share=best[2],
        n_cells=best[3],
        is_deterministic=deterministic,
        message=message,
        table=table,
    )


# ---------------------------------------------------------------- checking logged propensities

#: ``check_logged_propensities``: z-score beyond which a discrepancy is not sampling error.
CHECK_Z = 3.29  # two-sided 0.1%
#: ... and the factor by which the propensities must be off for the flag to matter.
CHECK_TOLERANCE = 1.2


@dataclass(frozen=True)
class PropensityCheck:
    """Logged propensities against an estimated logging policy, at the logged actions.

    With ``p_i`` the logged propensity and ``q_i = mu_hat(a_i | x_i)`` the estimated one:

    Attributes:
        ok: False when a check failed (``failed`` names it).
        failed: ``""``, ``"too_large"`` or ``"too_small"``.
        message: one line naming the column ``propensity`` and the outcome.
        n: rows compared.
        median_ratio: ``median_i p_i / q_i``.
        mean_log_ratio: ``mean_i log(p_i / q_i)``.
        mass: ``M = mean_i q_i / p_i``, the inverse-propensity estimate of the estimated
            policy's total probability on the logger's support: at most 1 (up to sampling
            error) whatever ``mu_hat`` when the ``p_i`` are right, and exactly 1 when
            ``mu_hat`` puts no mass outside the logger's support (any logger that gives every
            action a chance, e.g. uniform or ε-greedy). ``M < 1`` means logged propensities
            too large, ``M > 1`` too small.
        mass_se: its standard error, ``std(q / p) / sqrt(n)``.
        table: calibration by decile of the logged propensity: ``decile``, ``n``,
            ``p_min``, ``p_max``, ``mean_logged``, ``mean_estimated``, ``median_ratio``,
            ``mass``, ``mass_se`` (deciles sharing a value are merged).
    """

    ok: bool
    failed: str
    message: str
    n: int
    median_ratio: float
    mean_log_ratio: float
    mass: float
    mass_se: float
    table: pl.DataFrame


def _times(x: float) -> str:
    return f"{x:.2g}×" if x < 0.995 else f"{x:.1f}×" if x < 9.95 else f"{x:.0f}×"


def check_logged_propensities(
    action: ArrayLike,
    propensity: ArrayLike,
    estimated_probs: ArrayLike,
    *,
    z: float = CHECK_Z,
    tolerance: float = CHECK_TOLERANCE,
) -> PropensityCheck:
    """Do the logged propensities agree with the logging policy estimated from the log?

    The test statistic is ``M = mean_i q_i / p_i`` (see :class:`PropensityCheck`), which
    needs no faith in the estimate ``q`` for one direction: ``E[q(a|x) / mu(a|x)] =
    sum_{k: mu(k|x) > 0} q(k|x) <= 1`` when the ``p_i = mu(a_i|x_i)`` are right, so
    ``M > 1`` beyond sampling error means the logged propensities are too small. Below 1,
    ``M`` also drops when ``q`` spreads mass where the logger never goes (a deterministic
    logger fitted imperfectly), so "too large" is flagged only when ``M`` is both
    significantly below 1 and below ``1 / tolerance``. Flags (``sigma = mass_se``):

    * ``too_large``: ``M < 1 - z·sigma`` and ``M < 1 / tolerance``;
    * ``too_small``: ``M > 1 + z·sigma`` and ``M > tolerance``.

    ``q`` should be cross-fitted (:func:`estimate_logging_policy`) so it does not depend on
    row ``i``'s own action.

    Args:
        action: ``(n,)`` logged action indices.
        propensity: ``(n,)`` logged propensities in (0, 1].
        estimated_probs: ``(n, K)`` estimated logging policy.
        z: z-score a discrepancy must exceed (default 3.29, two-sided 0.1%).
        tolerance: factor by which the propensities must be off (default 1.2).

    Returns:
        :class:`PropensityCheck`; e.g. on a log drawn uniformly over 12 variants whose
        propensity column says 1/3: "column 'propensity': logged propensities are 4.0× the
        estimated logging policy's (median ratio over 12,000 rows); the log's own action
        frequencies given the context disagree (M = mean q/p = 0.25 ± 0.0021; 1 if right)".
    """
    q_all = as_float_array(estimated_probs, "estimated_probs", 2)
    n, k = q_all.shape
    a = as_action_array(action, k)
    p = as_float_array(propensity, "propensity", 1)
    if a.shape[0] != n or p.shape[0] != n:
        raise ValueError(
            f"action ({a.shape[0]}), propensity ({p.shape[0]}) and estimated_probs ({n}) "
            "must have the same number of rows"
        )
    if n < 2:
        raise ValueError(f"need at least 2 rows to check propensities, got {n}")
    check_finite(p, "propensity")
    if not (p.min() > 0.0 and p.max() <= 1.0):
        raise ValueError("propensity must be in (0, 1]")
    q = q_all[np.arange(n), a]
    if not q.min() > 0.0:
        raise ValueError("estimated_probs must be > 0 at every logged action")
    w = q / p
    mass = float(w.mean())
    se = float(w.std(ddof=1) / math.sqrt(n))
    ratio = p / q
    median_ratio = float(np.median(ratio))
    mean_log_ratio = float(np.log(ratio).mean())

    too_large = mass < 1.0 - z * se and mass < 1.0 / tolerance
    too_small = mass > 1.0 + z * se and mass > tolerance
    failed = "too_large" if too_large else "too_small" if too_small else ""
    stat = f"M = mean q/p = {mass:.3g} ± {se:.2g}"
    head = f"column 'propensity': logged propensities are {_times(median_ratio)} the estimated"
    over = f"logging policy's (median ratio over {n:,} rows)"
    if too_large:
        message = (
            f"{head} {over}; the log's own action frequencies given the context disagree "
            f"({stat}; 1 if right)"
        )
    elif too_small:
        message = (
            f"{head} {over}; inverse-propensity weights overcount the log "
            f"({stat}; at most 1 if right)"
        )
    else:
        message = (
            f"column 'propensity': agrees with the estimated logging policy within sampling "
            f"error (median ratio {median_ratio:.3g} over {n:,} rows; {stat})"
        )
    return PropensityCheck(
        ok=not failed,
        failed=failed,
        message=message,
        n=n,
        median_ratio=median_ratio,
        mean_log_ratio=mean_log_ratio,
        mass=mass,
        mass_se=se,
        table=_calibration(p, q, w),
    )


def _calibration(
    p: NDArray[np.float64], q: NDArray[np.float64], w: NDArray[np.float64]
) -> pl.DataFrame:
    """Calibration table by decile of the logged propensity ``p`` (one polars group_by)."""
    edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, 11)[1:-1]))
    decile = np.searchsorted(edges, p, side="left")  # bin j: edges[j-1] < p <= edges[j]
    return (
        pl.DataFrame({"decile": decile, "p": p, "q": q, "w": w, "r": p / q})
        .group_by("decile")
        .agg(
            pl.len().alias("n"),
            pl.col("p").min().alias("p_min"),
            pl.col("p").max().alias("p_max"),
            pl.col("p").mean().alias("mean_logged"),
            pl.col("q").mean().alias("mean_estimated"),
            pl.col("r").median().alias("median_ratio"),
            pl.col("w").mean().alias("mass"),
            (pl.col("w").std() / pl.len().sqrt()).fill_null(float("nan")).alias("mass_se"),
        )
        .sort("decile")
        .with_columns(pl.col("decile").cast(pl.Int64), pl.col("n").cast(pl.Int64))
    )
