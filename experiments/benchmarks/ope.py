"""Off-policy estimation at scale.

* ``ope_10m``: IPS, SNIPS, DM, DR together on 10M logged rounds (K = 10) with
  :func:`bandits.ope.estimate_many`, then analytic 95% intervals for five estimators, against
  the same estimators one by one; the reward model's fitting is timed separately.
* ``ope_stream``: a 100M-row parquet log (generated here in a temporary directory by a
  separate process, deleted afterwards) streamed in row batches with
  :func:`bandits.data.iter_log_batches`; per batch the target policy's probabilities and the
  reward model are computed from the context column ``x``, each estimator's statistics come
  from :func:`bandits.ope.partial_many` and are merged with ``Stats.merge``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from bandits.ope import DM, DR, IPS, SNDR, SNIPS, RidgeRewardModel, estimate_many, partial_many
from experiments.benchmarks.common import Row, best_time, installed

K = 10


def _fit_reward_model(log: dict[str, np.ndarray], K: int) -> tuple[float, Any, np.ndarray]:
    """Time a ridge reward model's fit on ``[x, x²]``; its predictions ``q (n, K)``."""
    features = np.column_stack([log["x"], log["x"] ** 2])
    fit_s, model = best_time(
        lambda: RidgeRewardModel().fit(features, log["action"], log["reward"], K), 1
    )
    return fit_s, model, model.predict(features)


def _softmax_policy(x: np.ndarray) -> np.ndarray:
    """Synthetic target policy ``(n, K)``: softmax over actions of ``x * (k - 4.5) / 2``."""
    logits = np.outer(x, (np.arange(K) - 4.5) / 2.0)
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def _reward_prob(x: np.ndarray, action: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(0.3 * x * (action - 4.5) / 4.5 - 0.5)))


def _reward_hat(x: np.ndarray) -> np.ndarray:
    """A fixed (slightly misspecified) reward model ``(n, K)`` of ``x``."""
    return 1.0 / (1.0 + np.exp(-(np.outer(x, 0.25 * (np.arange(K) - 4.5) / 4.5) - 0.45)))


def logged_data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Uniform logging over K actions, Bernoulli rewards depending on a context ``x``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    action = rng.integers(0, K, n)
    reward = (rng.random(n) < _reward_prob(x, action)).astype(np.float64)
    return {"x": x, "action": action, "reward": reward, "propensity": np.full(n, 1.0 / K)}


def bench_ope_10m(quick: bool) -> list[Row]:
    n = 200_000 if quick else 10_000_000
    reps = 1 if quick else 3
    log = logged_data(n)
    fit_s, _, q = _fit_reward_model(log, K)
    pi = _softmax_policy(log["x"])
    kw: dict[str, Any] = dict(
        reward=log["reward"],
        action=log["action"],
        propensity=log["propensity"],
        target_probs=pi,
        reward_hat=q,
    )
    four = [IPS(), SNIPS(), DM(), DR()]
    five = [IPS(), SNIPS(), DM(), DR(), SNDR()]
    estimate_many(four, **{k: v[:1000] for k, v in kw.items()})  # load compiled kernels
    t_four, est4 = best_time(lambda: estimate_many(four, **kw), reps)
    t_five, est5 = best_time(lambda: estimate_many(five, **kw), reps)
    t_single, single = best_time(lambda: [e.estimate(**kw) for e in four], 1)
    for a, b in zip(est4, single, strict=True):
        assert abs(a.value - b.value) <= 1e-12 and abs(a.stderr - b.stderr) <= 1e-12
    peers: dict[str, float | None] = {"the four estimators one by one": n / t_single}
    rows = [
        Row(
            "ope: IPS+SNIPS+DM+DR (estimate_many)",
            n,
            t_four,
            peers=peers,
            target="≤ 1 s at 10M rows",
            met=None if quick else t_four <= 1.0,
            notes=(
                f"K = {K}; values "
                + ", ".join(f"{e.estimator} {e.value:.4f}" for e in est4)
                + f"; reward model (RidgeRewardModel) fit separately: {fit_s:.2f} s"
            ),
            extra={"fit_seconds": fit_s, "values": {e.estimator: e.value for e in est4}},
        ),
        Row(
            "ope: 95% analytic intervals, 5 estimators",
            n,
            t_five,
            target="≤ 2 s at 10M rows",
            met=None if quick else t_five <= 2.0,
            notes="IPS, SNIPS, DM, DR, SNDR; intervals "
            + ", ".join(f"{e.estimator} ±{e.ci_high - e.value:.5f}" for e in est5),
        ),
    ]
    if installed("obp"):  # optional peer: OBP's bootstrap interval for IPS (slow: 100k rows)
        rows.append(_obp_row(quick))
    return rows


def _obp_row(quick: bool) -> Row:
    from obp.ope import InverseProbabilityWeighting

    m = 10_000 if quick else 100_000
    log = logged_data(m)
    pi = _softmax_policy(log["x"])[:, :, None]
    ipw = InverseProbabilityWeighting()
    t, _ = best_time(
        lambda: ipw.estimate_interval(
            reward=log["reward"],
            action=log["action"],
            pscore=log["propensity"],
            action_dist=pi,
            n_bootstrap_samples=1000,
            random_state=0,
        ),
        1,
    )
    ours = IPS(interval="bootstrap", n_bootstrap=1000, seed=0)
    t2, _ = best_time(
        lambda: ours.estimate(
            reward=log["reward"],
            action=log["action"],
            propensity=log["propensity"],
            target_probs=pi[:, :, 0],
        ),
        1,
    )
    return Row(
        "ope: IPS bootstrap interval (1000 reps)",
        m,
        t2,
        peers={"OBP IPW estimate_interval": m / t},
    )


# --------------------------------------------------------------------------- streaming
_GEN = r"""
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
sys.path.insert(0, {root!r})
from experiments.benchmarks.ope import K, _reward_prob
paths, rows, chunk = {paths!r}, {rows}, {chunk}
rng = np.random.default_rng(0)
schema = pa.schema([("x", pa.float32()), ("action", pa.int8()), ("reward", pa.float32()),
                    ("propensity", pa.float64())])
per = rows // len(paths)
for j, path in enumerate(paths):
    m_total = per if j < len(paths) - 1 else rows - per * (len(paths) - 1)
    with pq.ParquetWriter(path, schema, compression="snappy") as w:
        for start in range(0, m_total, chunk):
            m = min(chunk, m_total - start)
            x = rng.standard_normal(m, dtype=np.float32)
            a = rng.integers(0, K, m, dtype=np.int8)
            r = (rng.random(m, dtype=np.float32) < _reward_prob(x, a)).astype(np.float32)
            w.write_table(pa.table({{"x": x, "action": a, "reward": r,
                                     "propensity": np.full(m, 1.0 / K)}}, schema=schema),
                          row_group_size=1 << 20)
"""


def generate_parquet(path: str, rows: int, chunk: int = 5_000_000, parts: int = 1) -> float:
    """Write the synthetic log (``rows`` rows drawn from one generator, seed 0, in chunks of
    ``chunk`` rows) with a separate Python process (so that its memory is not counted in
    the evaluation's peak RSS); returns seconds. ``parts == 1``: the file ``path``; else
    ``parts`` files ``path/part-0000.parquet`` … of ``rows // parts`` rows (the last takes
    the rest), in log order."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [path] if parts == 1 else [f"{path}/part-{j:04d}.parquet" for j in range(parts)]
    code = _GEN.format(root=root, paths=paths, rows=rows, chunk=chunk)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def _batches(path: str, batch_rows: int):
    """``(x, action, reward, propensity)`` per batch: bandits.data.iter_log_batches."""
    from bandits.data import iter_log_batches

    for b in iter_log_batches(path, batch_rows=batch_rows, context_columns=["x"]):
        yield b.frame["x"].to_numpy(), b.action, b.reward, b.propensity


def stream_estimates(path: str, batch_rows: int):
    ests = [IPS(), SNIPS(), DM(), DR(), SNDR()]
    parts: list[list] = [[] for _ in ests]
    n = 0
    for x, action, reward, propensity in _batches(path, batch_rows):
        x = np.asarray(x, dtype=np.float64)
        stats = partial_many(
            ests,
            reward=reward,
            action=action,
            propensity=propensity,
            target_probs=_softmax_policy(x),
            reward_hat=_reward_hat(x),
        )
        for acc, s in zip(parts, stats, strict=True):
            acc.append(s)
        n += len(reward)
        del x, stats
    merged = [e.finalize(sum(p[1:], p[0])) for e, p in zip(ests, parts, strict=True)]
    return n, merged


def bench_ope_stream(quick: bool) -> list[Row]:
    rows = 2_000_000 if quick else 100_000_000
    batch_rows = 500_000 if quick else 2_000_000
    tmp = tempfile.mkdtemp(prefix="bench_stream_")
    try:
        path = os.path.join(tmp, "log.parquet")
        gen_s = generate_parquet(path, rows)
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        n, est = stream_estimates(path, batch_rows)
        secs = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert n == rows
    from experiments.benchmarks.common import peak_rss_mib

    rss = peak_rss_mib()
    return [
        Row(
            f"ope: {rows // 1_000_000}M-row parquet, streamed",
            rows,
            secs,
            unit="rows",
            target="peak RSS ≤ 2 GiB",
            met=None if quick else rss <= 2048,
            notes=(
                f"bandits.data.iter_log_batches, {batch_rows:,}-row batches, 5 estimators via "
                f"partial_many + Stats.merge; file {size / 2**20:.0f} MiB written in "
                f"{gen_s:.0f} s by a separate process (not in the RSS); values "
                + ", ".join(f"{e.estimator} {e.value:.4f}" for e in est)
            ),
            extra={"values": {e.estimator: e.value for e in est}},
        )
    ]
