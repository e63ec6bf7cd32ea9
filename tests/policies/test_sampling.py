"""The one sampling module: every form of the draw, the ε-mix and the blocks agrees bit for
bit (numpy, compiled, interpreted, list), and the draw follows its definition."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.policies.sampling import (
    block_stop,
    blocks,
    draw,
    draw_list,
    mix,
    mix_one,
    mix_row,
    one_hot_argmax,
    sample_from,
)


def _rows(seed: int, n: int = 400, k: int = 7) -> np.ndarray:
    """Random distributions with zeros, one-hots, plateaus and tiny entries."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.3), n)
    p[rng.random((n, k)) < 0.3] = 0.0
    p[::17] = np.eye(k)[rng.integers(0, k, p[::17].shape[0])]
    p[1::19, : k // 2] = 1e-300
    p = np.where(p.sum(axis=1, keepdims=True) > 0, p, 1.0)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(3))
def test_every_form_of_the_draw_is_the_same(seed: int) -> None:
    probs = _rows(seed)
    rng = np.random.default_rng(100 + seed)
    u: np.ndarray = np.asarray(rng.random(probs.shape[0]))
    # uniforms exactly on cdf edges (where a zero-probability action sits on a plateau)
    cdf = np.cumsum(probs, axis=1)
    edge = rng.integers(0, probs.shape[1] - 1, probs.shape[0])
    u[::3] = cdf[np.arange(probs.shape[0]), edge][::3]
    u[u >= 1.0] = np.nextafter(1.0, 0.0)
    actions, props = sample_from(probs, u)
    for i, (row, ui) in enumerate(zip(probs, u, strict=True)):
        a = int(actions[i])
        assert draw(row, ui) == a
        assert draw.py_func(row, ui) == a
        assert draw_list(row.tolist(), float(ui)) == a
        assert props[i] == row[a] > 0.0
        # the definition: a = #{j < K-1: cdf_j <= u}, or the first most probable action
        count = int((np.cumsum(row)[:-1] <= ui).sum())
        assert a == (count if row[count] > 0 else int(np.argmax(row)))


def test_the_draw_follows_the_probabilities() -> None:
    p = np.array([0.1, 0.0, 0.6, 0.3])
    u = np.random.default_rng(0).random(200_000)
    actions, _ = sample_from(np.tile(p, (u.size, 1)), u)
    freq = np.bincount(actions, minlength=4) / u.size
    assert freq[1] == 0.0
    np.testing.assert_allclose(freq, p, atol=4e-3)  # > 10 standard errors of a share


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3, 1.0])
def test_every_form_of_the_mix_is_the_same(eps: float) -> None:
    probs = _rows(7)
    k = probs.shape[1]
    want = mix(probs, eps)
    if eps == 0.0:
        assert want is probs
    for i, row in enumerate(probs):
        compiled, interpreted, listed = row.copy(), row.copy(), row.tolist()
        mix_row(compiled, eps)
        mix_row.py_func(interpreted, eps)
        mix_row.py_func(listed, eps)
        np.testing.assert_array_equal(compiled, want[i])
        np.testing.assert_array_equal(interpreted, want[i])
        np.testing.assert_array_equal(np.array(listed), want[i])
        assert [mix_one(x, eps, k) for x in row] == want[i].tolist()
    assert want.min() >= eps / k - 1e-15


@pytest.mark.parametrize(("n", "step"), [(0, 3), (1, 1), (10, 1), (10, 3), (10, 10), (10, 25)])
def test_blocks_cover_the_rounds_in_order(n: int, step: int) -> None:
    spans = list(blocks(n, step))
    flat = [t for start, stop in spans for t in range(start, stop)]
    assert flat == list(range(n))
    assert all(0 < stop - start <= step for start, stop in spans)
    assert all(block_stop(start, step, n) == stop for start, stop in spans)


def test_ties_share_the_mass() -> None:
    scores = np.array([[1.0, 1.0 - 1e-13, 0.5], [0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(one_hot_argmax(scores), [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
