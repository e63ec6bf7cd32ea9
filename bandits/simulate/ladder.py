"""The personalization ladder in simulation: several policies on the same audience with
common random numbers, turned into paired per-round terms for :mod:`bandits.compare`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from bandits.compare import PairedTerms
from bandits.policies.base import Policy
from bandits.simulate.environment import Environment
from bandits.simulate.knobs import AudienceSettings
from bandits.simulate.online import OnlineResult, run_online

GROUP_DIMENSIONS = ("segment", "channel", "weather", "daypart")


def run_ladder(
    settings: AudienceSettings,
    policies: Mapping[str, Policy],
    rounds: int,
    seed: int,
    *,
    eval_rounds: int = 5000,
    on_policy: Callable[[str, OnlineResult], None] | None = None,
) -> dict[str, OnlineResult]:
    """Run each policy (label → unbound policy) on a fresh copy of the same audience.

    Every policy gets the same environment seed (same world, users, contexts and potential
    outcomes: common random numbers) and the same policy seed, exactly as the ``simulate``
    app with this ``seed`` would.
    """
    results = {}
    for label, policy in policies.items():
        env = Environment(settings, np.random.SeedSequence([seed, 0]))
        results[label] = run_online(
            env, policy, rounds, np.random.SeedSequence([seed, 1]), eval_rounds=eval_rounds
        )
        if on_policy is not None:
            on_policy(label, results[label])
    return results


def paired_terms(results: Mapping[str, OnlineResult]) -> dict[str, PairedTerms]:
    """Per-round realised reward (observed), expected reward (truth) and unsubscribes."""
    return {
        label: PairedTerms(value=r.reward, truth=r.expected, cost=r.unsubscribed.astype(float))
        for label, r in results.items()
    }


def round_groups(
    results: Mapping[str, OnlineResult], dimensions: Sequence[str] = GROUP_DIMENSIONS
) -> dict[str, np.ndarray]:
    """Per-round labels of each context dimension, shape ``(rounds,)`` (object; ``None``
    for rounds no policy could send). Under common random numbers every policy saw the same
    context in a round, so the union of their decision logs labels every reachable round."""
    rounds = next(iter(results.values())).rounds
    out = {dim: np.full(rounds, None, dtype=object) for dim in dimensions}
    for r in results.values():
        idx = r.log["round"].to_numpy()
        for dim in dimensions:
            if dim in r.log.columns:
                out[dim][idx] = r.log[dim].cast(str).to_numpy().astype(object)
    return out
