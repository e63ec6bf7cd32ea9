"""LinUCB / linear Thompson sampling: simulation (``Policy.play``) and replay (``Policy.replay``,
the compiled rejection-sampling kernel) with 10 variants and 10 features, exact per-round
Sherman–Morrison updates; peers: a plain numpy Sherman–Morrison loop (written here) and
MABWiser's LinUCB when installed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bandits.features import FeatureSchema, NumericFeature
from bandits.policies import make_policy
from bandits.policies.base import Contexts, ProblemSpec
from experiments.benchmarks.common import Row, best_time, installed

K, D = 10, 10


def problem(n: int, seed: int = 0):
    """Synthetic problem: ``X (n, D)`` (intercept + 9 normals), Bernoulli rewards with
    ``P(r = 1 | x, k) = sigmoid(x·θ_k)``; returns spec, contexts, potential rewards ``(n, K)``
    and the true success probabilities."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    X[:, 0] = 1.0
    theta = rng.normal(scale=0.5, size=(K, D))
    p = 1.0 / (1.0 + np.exp(-(X @ theta.T)))
    potential = (rng.random((n, K)) < p).astype(np.float64)
    schema = FeatureSchema(numeric=tuple(NumericFeature(f"x{i}") for i in range(D - 1)))
    catalog = pl.DataFrame({"variant_id": [f"v{k}" for k in range(K)]})
    spec = ProblemSpec(action_ids=tuple(catalog["variant_id"]), catalog=catalog, features=schema)
    ctx = Contexts(frame=pl.DataFrame(), X=X)
    return spec, ctx, potential, p


def _sim(name: str, rounds: int, settings: dict, repeats: int) -> tuple[float, object]:
    spec, ctx, potential, p = problem(rounds)
    warm_spec, warm_ctx, warm_pot, _ = problem(200, seed=1)
    make_policy(name, settings).reset(warm_spec, 0).play(warm_ctx, warm_pot)  # compile/load

    def run(policy):
        return policy.play(ctx, potential)

    secs, dec = best_time(run, repeats, setup=lambda: make_policy(name, settings).reset(spec, 0))
    assert dec.probs.shape == (rounds, K)
    regret = float((p.max(axis=1) - p[np.arange(rounds), dec.actions]).mean())
    return secs, regret


def _replay(name: str, events: int, settings: dict, repeats: int) -> tuple[float, int, int]:
    """Best time, accepted events, and events decided without computing π (see
    ``Policy.replay(need_pi=False)``)."""
    spec, ctx, potential, _ = problem(events, seed=2)
    rng = np.random.default_rng(3)
    logged = rng.integers(0, K, events)
    rewards = potential[np.arange(events), logged]
    mu = np.full(events, 1.0 / K)
    uniforms = rng.random(events)
    warm = make_policy(name, settings).reset(spec, 0)
    warm.replay(ctx.slice(0, 100), logged[:100], rewards[:100], mu[:100], uniforms[:100], 0.1)

    def run(policy):
        # as bandits.offline.replay.replay calls it (π of the logged action only where needed)
        return policy.replay(ctx, logged, rewards, mu, uniforms, float(mu.min()), need_pi=False)

    secs, (accepted, pi_logged) = best_time(
        run, repeats, setup=lambda: make_policy(name, settings).reset(spec, 0)
    )
    return secs, int(accepted.sum()), int(np.isnan(pi_logged).sum())


def numpy_sherman_morrison(rounds: int, alpha: float = 1.0) -> float:
    """Peer: LinUCB as a plain numpy loop (one small matrix product per arm per round)."""
    _, ctx, potential, _ = problem(rounds)
    X = ctx.X
    A_inv = np.stack([np.eye(D)] * K)
    b = np.zeros((K, D))
    theta = np.zeros((K, D))

    def run():
        for t in range(rounds):
            x = X[t]
            Ax = A_inv @ x  # (K, D)
            score = theta @ x + alpha * np.sqrt(np.maximum(Ax @ x, 0.0))
            a = int(np.argmax(score))
            ax = Ax[a]
            A_inv[a] -= np.outer(ax, ax) / (1.0 + x @ ax)
            b[a] += potential[t, a] * x
            theta[a] = A_inv[a] @ b[a]

    secs, _ = best_time(run, 1)
    return rounds / secs


def mabwiser_linucb(rounds: int, alpha: float = 1.0) -> float | None:
    """Peer: MABWiser's LinUCB, one ``predict`` + ``partial_fit`` per round (its online API)."""
    if not installed("mabwiser"):
        return None
    from mabwiser.mab import MAB, LearningPolicy

    _, ctx, potential, _ = problem(rounds + 50)
    X = ctx.X[:, 1:]
    arms = list(range(K))
    mab = MAB(arms, LearningPolicy.LinUCB(alpha=alpha, l2_lambda=1.0), seed=0)
    warm = np.arange(K)
    mab.fit(list(warm % K), list(potential[warm, warm % K]), X[:K])

    def run():
        for t in range(50, 50 + rounds):
            a = mab.predict(X[t : t + 1])
            mab.partial_fit([a], [potential[t, a]], X[t : t + 1])

    secs, _ = best_time(run, 1)
    return rounds / secs


def bench_linucb(quick: bool) -> list[Row]:
    rounds = 20_000 if quick else 2_000_000
    reps = 1 if quick else 5
    secs, regret = _sim("linucb", rounds, {"alpha": 1.0}, reps)
    peers = {
        "numpy Sherman–Morrison loop": numpy_sherman_morrison(2_000 if quick else 20_000),
        "MABWiser LinUCB": mabwiser_linucb(100 if quick else 2_000),
    }
    sim = Row(
        "linucb simulation (play)",
        rounds,
        secs,
        peers=peers,
        target="≥ 1.5 M rounds/s",
        met=None if quick else rounds / secs >= 1.5e6,
        extra={"mean_regret": regret},
    )
    events = 20_000 if quick else 2_000_000
    rsecs, acc, _ = _replay("linucb", events, {"alpha": 1.0}, reps)
    rep = Row(
        "linucb replay (Policy.replay)",
        events,
        rsecs,
        unit="logged events",
        target="≥ 1.5 M events/s",
        met=None if quick else events / rsecs >= 1.5e6,
        notes=f"uniform logging, {acc:,} of {events:,} events accepted (learned from)",
        extra={"accepted": acc},
    )
    return [sim, rep]


def bench_lints(quick: bool) -> list[Row]:
    rounds = 20_000 if quick else 1_000_000
    reps = 1 if quick else 5
    settings = {"v": 0.3, "n_nodes": 16}
    secs, regret = _sim("lints", rounds, settings, reps)
    sim = Row(
        "lints simulation (play)",
        rounds,
        secs,
        target="≥ 500 k rounds/s",
        met=None if quick else rounds / secs >= 5e5,
        notes="win probabilities within 1e-10 (pruning bound 5e-17, closed form for 2 competing "
        "arms, shared-grid trapezoid rule for ≥3); includes the early all-arms-competing phase",
        extra={"mean_regret": regret},
    )
    events = 20_000 if quick else 1_000_000
    rsecs, acc, by_bounds = _replay("lints", events, settings, reps)
    rep = Row(
        "lints replay (Policy.replay)",
        events,
        rsecs,
        unit="logged events",
        target="≥ 500 k events/s",
        met=None if quick else events / rsecs >= 5e5,
        notes=f"uniform logging, {acc:,} of {events:,} events accepted; {by_bounds:,} events "
        "decided from bounds on the win probability (no integration; same acceptances and "
        "state as computing it, tested)",
        extra={"accepted": acc, "decided_by_bounds": by_bounds},
    )
    return [sim, rep]
