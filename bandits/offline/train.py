"""Learning a policy from logged data (offline / batch learning).

``train_offline`` binds a policy to the log's problem and feeds it the logged decisions with
their propensities in log order, in chunks. What the policy does with the propensities is its
own: ``vw`` trains ``--cb_explore_adf`` on (context, action, cost, probability) labels with
its ``--cb_type`` (``ips``, ``dr``, ``mtr`` via ``policy.extra_args``); ``iw_linear`` fits
importance-weighted ridge regressions; LinUCB ignores propensities (biased unless the log is
uniform). Evaluate the trained policy on *held-out* rows (:func:`split_log`).
"""

from __future__ import annotations

import numpy as np

from bandits.data.contract import LoggedData
from bandits.errors import ConfigError
from bandits.policies.base import Policy

CHUNK = 100_000


def split_log(data: LoggedData, train_fraction: float) -> tuple[LoggedData, LoggedData]:
    """Split by time (the first ``train_fraction`` of rows trains, the rest evaluates)."""
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1), got {train_fraction}")
    cut = round(data.n * train_fraction)
    if cut == 0 or cut == data.n:
        raise ConfigError(
            f"train_fraction={train_fraction} leaves an empty part of a {data.n}-row log"
        )
    return _rows(data, 0, cut), _rows(data, cut, data.n)


def _rows(data: LoggedData, start: int, stop: int) -> LoggedData:
    from dataclasses import replace

    return replace(
        data,
        frame=data.frame.slice(start, stop - start),
        action=data.action[start:stop],
        reward=data.reward[start:stop],
        propensity=data.propensity[start:stop],
        logging_probs=None if data.logging_probs is None else data.logging_probs[start:stop],
        row_offset=data.row_offset + start,
    )


def train_offline(
    policy: Policy, data: LoggedData, seed: int | np.random.SeedSequence = 0
) -> Policy:
    """Reset ``policy`` on the log's problem and learn from every logged decision."""
    spec = data.problem_spec()
    policy.reset(spec, seed)
    for start in range(0, data.n, CHUNK):
        stop = min(start + CHUNK, data.n)
        ctx = spec.contexts(data.frame.slice(start, stop - start))
        policy.update(
            ctx, data.action[start:stop], data.reward[start:stop], data.propensity[start:stop]
        )
    return policy
