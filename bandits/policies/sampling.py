"""Drawing an action and mixing in exploration: the one definition every policy uses.

Three execution modes share these definitions, so a decision is bit-for-bit the same whether
it is made by numpy (:func:`sample_from`, :func:`mix`), inside a numba kernel (:func:`draw`,
:func:`mix_row`, :func:`mix_one`, :func:`block_stop`) or per round in plain Python on a list
(the VW policy: :func:`draw_list`, and ``mix_row.py_func``, the same source interpreted); the
tests check that the forms agree bit for bit:

* **draw** (inverse CDF): with ``cdf_j = p_0 + … + p_j`` summed left to right, the action is
  the number of ``j < K − 1`` with ``cdf_j ≤ u`` (``u`` uniform in [0, 1)), so
  ``P(a = k) = p_k`` and the last action takes whatever rounding leaves above ``cdf_{K−2}``.
  If that action has probability 0 (``u`` exactly on the edge of a plateau of the cdf), the
  first action of largest probability is taken instead: a zero-probability action is never
  drawn, and the propensity ``p_a`` is always the probability the action was drawn with.
* **mix** (ε-exploration): ``(1 − ε)·p_k + ε / K`` elementwise, in exactly this order of
  operations everywhere (``ε = 0`` leaves ``p`` untouched).
* **ties**: a greedy choice splits its mass equally over the actions within :data:`TIE_TOL` of
  the best score (:func:`one_hot_argmax`; the compiled greedy rules use the same tolerance).
* **blocks** (``update_every``): rounds ``[start, min(start + step, n))`` act on one frozen
  state, then learn; ``step = 1`` is exact per-round learning.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate

import numpy as np
from numba import njit

__all__ = [
    "TIE_TOL",
    "block_stop",
    "blocks",
    "draw",
    "draw_list",
    "mix",
    "mix_one",
    "mix_row",
    "one_hot_argmax",
    "sample_from",
]

#: Scores within this of the best are ties (greedy rules split their mass equally).
TIE_TOL = 1e-12


@njit(cache=True)
def draw(probs, u):
    """One inverse-CDF draw from ``probs (K,)`` (an array, or a list via ``draw.py_func``)
    with the uniform ``u``: the action index (module docstring; branch-free count)."""
    k_all = len(probs)
    cdf = 0.0
    a = 0
    for k in range(k_all - 1):
        cdf += probs[k]
        a += 1 if u >= cdf else 0
    if probs[a] <= 0.0:
        best = 0
        for k in range(k_all):
            if probs[k] > probs[best]:
                best = k
        a = best
    return a


def draw_list(probs: list[float], u: float) -> int:
    """:func:`draw` for a plain list ``probs`` of ``K`` floats, bit for bit (the running sums
    are the same left-to-right additions, and ``bisect_right`` over the first ``K − 1`` of
    them counts those ``≤ u``): the interpreter's fast path, used per round by VW."""
    k_all = len(probs)
    a = bisect_right(list(accumulate(probs)), u, 0, k_all - 1)
    if probs[a] <= 0.0:
        a = max(range(k_all), key=probs.__getitem__)
    return a


@njit(cache=True)
def mix_one(p, epsilon, k_all):
    """``(1 − ε)·p + ε / K`` for one probability (or a bound on one) among ``K`` actions."""
    return (1.0 - epsilon) * p + epsilon / k_all


@njit(cache=True)
def mix_row(probs, epsilon):
    """In place: ``probs[k] = (1 − ε)·probs[k] + ε / K`` for ``probs (K,)`` (an array, or a
    list via ``mix_row.py_func``); nothing when ``ε ≤ 0``. The expression is
    :func:`mix_one`'s, written out so that the interpreted version calls no compiled code."""
    if epsilon > 0.0:
        k_all = len(probs)
        for k in range(k_all):
            probs[k] = (1.0 - epsilon) * probs[k] + epsilon / k_all


@njit(cache=True)
def block_stop(start, step, n):
    """End (exclusive) of the ``update_every`` block that starts at round ``start``."""
    stop = start + step
    return stop if stop < n else n


def blocks(n: int, step: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of the consecutive ``update_every = step`` blocks of ``n`` rounds."""
    for start in range(0, n, step):
        yield start, block_stop.py_func(start, step, n)


def mix(probs: np.ndarray, epsilon: float) -> np.ndarray:
    """``(1 − ε)·probs + ε / K`` for ``probs (n, K)`` (a new array; ``probs`` itself when
    ``ε = 0``), elementwise exactly as :func:`mix_row`."""
    eps = float(epsilon)
    if eps > 0:
        return (1.0 - eps) * probs + eps / probs.shape[1]
    return probs


def sample_from(probs: np.ndarray, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF sampling of one action per row, vectorised: row ``i`` is
    ``draw(probs[i], uniforms[i])`` (bit for bit: ``numpy.cumsum`` sums left to right).

    Args:
        probs: ``(n, K)`` rows summing to 1.
        uniforms: ``(n,)`` draws in [0, 1).

    Returns:
        ``actions (n,)`` int64 with ``P(a_i = k) = probs[i, k]`` and ``propensities (n,) =
        probs[i, a_i]``. Zero-probability actions are never drawn.
    """
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = np.inf  # the last action is never counted: a = #{j < K - 1: cdf_j <= u}
    actions = (uniforms[:, None] >= cdf).sum(axis=1)
    rows = np.arange(probs.shape[0])
    props = probs[rows, actions]
    if np.any(props <= 0):  # u exactly on a plateau edge: the first most probable action
        bad = props <= 0
        actions[bad] = probs[bad].argmax(axis=1)
        props = probs[rows, actions]
    return actions.astype(np.int64), props


def one_hot_argmax(scores: np.ndarray, tol: float = TIE_TOL) -> np.ndarray:
    """Deterministic greedy probabilities ``(n, K)`` from ``scores (n, K)``: ties (within
    ``tol`` of the row's best) share the mass equally."""
    best = scores.max(axis=1, keepdims=True)
    ties = scores >= best - tol
    return ties / ties.sum(axis=1, keepdims=True)
