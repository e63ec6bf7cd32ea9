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
    seed: int | np.random.SeedSequence,
    *,
    eval_rounds: int = 5000,
    on_policy: Callable[[str, OnlineResult], None] | None = None,
    policy_seeds: Mapping[str, np.random.SeedSequence] | None = None,
) -> dict[str, OnlineResult]:
    """Run each policy (label → unbound policy) on a fresh copy of the same audience.

    Every policy gets the same environment seed (same world, users, contexts and potential
    outcomes: common random numbers). With an integer ``seed`` and no ``policy_seeds`` that
    is ``SeedSequence([seed, 0])`` and every policy also gets the same policy seed
    ``SeedSequence([seed, 1])``, exactly as the ``simulate`` app with this ``seed`` would (so
    the same policy listed twice is the same run twice). With ``policy_seeds`` (label → seed)
    each rung draws its own; a :class:`~numpy.random.SeedSequence` ``seed`` is the
    environment's seed itself (see :mod:`bandits.simulate.replications`).
    """
    if isinstance(seed, np.random.SeedSequence):
        env_seed = seed
        if policy_seeds is None:
            raise ValueError("a SeedSequence environment seed needs policy_seeds")
        shared_policy_seed = None
    else:
        env_seed = np.random.SeedSequence([seed, 0])
        shared_policy_seed = np.random.SeedSequence([seed, 1])
    results = {}
    for label, policy in policies.items():
        env = Environment(settings, fresh_seed(env_seed))  # spawning advances a SeedSequence
        own = policy_seeds[label] if policy_seeds is not None else shared_policy_seed
        assert own is not None
        results[label] = run_online(env, policy, rounds, fresh_seed(own), eval_rounds=eval_rounds)
        if on_policy is not None:
            on_policy(label, results[label])
    return results


def fresh_seed(ss: np.random.SeedSequence) -> np.random.SeedSequence:
    """A copy of ``ss`` that has spawned no children yet: ``spawn`` advances the sequence it
    is called on, so the same environment seed handed to every rung must be a fresh copy
    each time for the rungs to see the same world (common random numbers)."""
    return np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key, pool_size=ss.pool_size)


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
