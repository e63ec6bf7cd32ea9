"""Learning a policy from logged data (offline / batch learning).

``train_offline`` binds a policy to the log's problem and feeds it the logged decisions with
their propensities in log order, in chunks. What the policy does with the propensities is its
own: ``vw`` trains ``--cb_explore_adf`` on (context, action, cost, probability) labels with
its ``--cb_type`` (``ips``, ``dr``, ``mtr`` via ``policy.extra_args``); ``iw_linear`` fits
importance-weighted ridge regressions; LinUCB ignores propensities (biased unless the log is
uniform). Evaluate the trained policy on *held-out* rows (:func:`split_log`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bandits.data.contract import LoggedData
from bandits.data.load import order_by_time
from bandits.data.validate import time_values
from bandits.errors import ConfigError
from bandits.policies.base import Policy

CHUNK = 100_000


def split_log(data: LoggedData, train_fraction: float) -> tuple[LoggedData, LoggedData]:
    """Split a log into ``(train, evaluation)`` by time.

    With a time column (``data.time_column``, which :func:`~bandits.data.load_log` sets to
    ``timestamp`` or its ``time_column=`` when the log has it), the first ``train_fraction`` of
    rows *in time order* train and the rest evaluate (a log not yet in time order is
    ordered first, stably); the evaluation part's ``cutoff`` is the time of its first row,
    so training rows are at or before it and evaluation rows at or after it (rows tied
    with it may fall on either side, in file order). Without a time column the split
    follows row order and ``cutoff`` is None.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1), got {train_fraction}")
    cut = round(data.n * train_fraction)
    if cut == 0 or cut == data.n:
        raise ConfigError(
            f"train_fraction={train_fraction} leaves an empty part of a {data.n}-row log"
        )
    if data.time_column is None:
        return _rows(data, 0, cut), _rows(data, cut, data.n)
    data = order_by_time(data)
    assert data.time_column is not None
    cutoff = time_values(data.frame[data.time_column], data.row_offset)[cut]
    return _rows(data, 0, cut), replace(_rows(data, cut, data.n), cutoff=cutoff)


def _rows(data: LoggedData, start: int, stop: int) -> LoggedData:
    return replace(
        data,
        frame=data.frame.slice(start, stop - start),
        action=data.action[start:stop],
        reward=data.reward[start:stop],
        propensity=data.propensity[start:stop],
        logging_probs=None if data.logging_probs is None else data.logging_probs[start:stop],
        row_offset=data.row_offset + start,
        cutoff=None,
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
