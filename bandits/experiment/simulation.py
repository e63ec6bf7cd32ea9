"""One policy learning online on the synthetic audience, as a library call.

**Seeds.** One root ``seed`` drives a simulation: the audience (world, users, contexts,
potential outcomes) draws from ``SeedSequence([seed, 0])`` and the policy (and the held-out
evaluation) from ``SeedSequence([seed, 1])`` (:func:`simulation_seeds`) — the same as
``python -m experiments.simulate seed=S`` and :func:`bandits.simulate.ladder.run_ladder`
with an integer seed.

**Privacy.** The simulator knows users only by pseudonymous keys (``user_key``, a seeded
permutation of synthetic ids); :func:`public_log` drops them from every decision log a
simulation hands out unless ``include_user_key`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import polars as pl

from bandits.errors import ConfigError
from bandits.experiment.results import SimulationResult
from bandits.policies.base import Policy
from bandits.simulate.environment import Environment, default_feature_schema
from bandits.simulate.knobs import AudienceSettings
from bandits.simulate.online import problem_spec, run_online

#: The simulator's pseudonymous user key: dropped from logs unless asked for.
USER_KEY = "user_key"


def simulation_seeds(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(audience seed, policy seed) of a simulation with root ``seed``:
    ``SeedSequence([seed, 0])`` and ``SeedSequence([seed, 1])``."""
    return np.random.SeedSequence([int(seed), 0]), np.random.SeedSequence([int(seed), 1])


def public_log(rows: pl.DataFrame, include_user_key: bool = False) -> pl.DataFrame:
    """Decision-log ``rows`` as handed out: without ``user_key`` unless
    ``include_user_key`` (a plain column selection: ``DataFrame.drop`` goes lazy)."""
    if include_user_key or USER_KEY not in rows.columns:
        return rows
    return rows[[c for c in rows.columns if c != USER_KEY]]


def check_policy(policy: Policy, audience: AudienceSettings, seed: int = 0) -> Policy:
    """Bind ``policy`` to the audience's catalog (``reset(spec, 0)``), so settings that
    depend on the catalog (a variant id that is not in it, …) fail now, as a one-line
    ConfigError, before anything runs; returns the policy."""
    env = Environment(audience, simulation_seeds(seed)[0])
    policy.bind(problem_spec(env), 0)
    return policy


def run_simulation(
    policy: Policy,
    audience: AudienceSettings | None = None,
    rounds: int = 20_000,
    seed: int = 1,
    *,
    eval_rounds: int = 5000,
    keep_log: bool = True,
    include_user_key: bool = False,
    on_log: Callable[[pl.DataFrame], None] | None = None,
    on_curves: tuple[int, Callable[[pl.DataFrame], None]] | None = None,
    on_day: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Run a fresh copy of ``policy`` (same settings; the given object is not touched) for
    ``rounds`` impression opportunities on ``audience`` (default: the built-in audience),
    seeded by ``seed`` (:func:`simulation_seeds`).

    Args:
        eval_rounds: held-out impressions on which the final policy's exact value is
            measured (``summary["final_policy_value"]``; 0: none).
        keep_log: keep the decision log in the result (``result.log``; needed by
            :meth:`~SimulationResult.to_logged_data`); false when ``on_log`` streams it.
        include_user_key: keep the simulator's pseudonymous ``user_key`` in the log.
        on_log: called with each day's decision-log rows (without ``user_key`` unless
            asked for) as soon as the day is done, e.g. to stream them to a file.
        on_curves: ``(every, callback)``: after each day, the curve points
            (``result.curves(every)``'s rows) whose step that day reached.
        on_day: progress, called with the rounds done after each day.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int | np.integer) or rounds <= 0:
        raise ConfigError(f"rounds must be a whole number > 0, got {rounds!r}")
    audience = audience if audience is not None else AudienceSettings()
    env_ss, policy_ss = simulation_seeds(seed)
    env = Environment(audience, env_ss)
    day_log = None
    if on_log is not None:
        stream = on_log

        def day_log(rows: pl.DataFrame) -> None:
            stream(public_log(rows, include_user_key))

    learner = policy.clone()
    t0 = time.perf_counter()
    online = run_online(
        env,
        learner,
        int(rounds),
        policy_ss,
        eval_rounds=int(eval_rounds),
        on_day=on_day,
        on_log=day_log,
        on_curves=on_curves,
        keep_log=keep_log,
    )
    seconds = time.perf_counter() - t0
    return SimulationResult(
        policy=online.policy,
        audience=audience.name,
        rounds=int(rounds),
        seed=int(seed),
        eval_rounds=int(eval_rounds),
        params=dict(online.params),
        summary=online.summary(),
        catalog=env.catalog.to_frame(),
        features=default_feature_schema(),
        reward=audience.response.reward,
        seconds=seconds,
        online=online,
        log=public_log(online.log, include_user_key) if keep_log else None,
        trained=learner,
    )
