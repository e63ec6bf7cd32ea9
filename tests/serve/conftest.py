"""Shared pieces of the service tests: a trained LinUCB bundle, simulated traffic with its
truth, and the server started as a real process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bandits.deploy.bundle import DeployedPolicy, load_bundle, save_bundle
from bandits.policies import make_policy
from bandits.simulate import AudienceSettings, Environment, problem_spec
from experiments.serve import ServerProcess

#: Columns of a simulated day that are bookkeeping, not context a client sends.
NOT_CONTEXT = ("timestamp", "user_key", "hour")


@dataclass(frozen=True)
class Traffic:
    """A trained bundle and a day of fresh simulated contexts: ``contexts`` (request
    bodies' ``context`` objects), ``potential (n, K)`` the reward each variant would get,
    ``expected (n, K)`` the exact expected rewards."""

    bundle: Path
    deployed: DeployedPolicy
    frame: pl.DataFrame
    contexts: list[dict]
    potential: np.ndarray
    expected: np.ndarray


@pytest.fixture(scope="session")
def traffic(tmp_path_factory) -> Traffic:
    env = Environment(AudienceSettings(impressions_per_day=2_000), 11)
    spec = problem_spec(env)
    policy = make_policy("linucb", {"epsilon": 0.05}).bind(spec, 5)
    for _ in range(2):
        day = env.next_day(2_000)
        dec = policy.play(spec.contexts(day.frame), day.potential_reward)
        env.commit(day, dec.actions)
    folder = tmp_path_factory.mktemp("bundle") / "linucb"
    save_bundle(folder, policy)
    fresh = env.next_day(2_000)
    frame = fresh.frame.drop(*NOT_CONTEXT)
    return Traffic(
        bundle=folder,
        deployed=load_bundle(folder),
        frame=frame,
        contexts=frame.to_dicts(),
        potential=fresh.potential_reward,
        expected=fresh.truth.expected_reward,
    )


@pytest.fixture
def start_server(tmp_path):
    """``start_server(*overrides)`` → a started :class:`ServerProcess` (stopped at the end
    of the test, killed if it does not stop)."""
    servers: list[ServerProcess] = []

    def start(
        *overrides: str, workdir: Path | None = None, env: dict[str, str] | None = None
    ) -> ServerProcess:
        where = workdir or tmp_path / f"srv{len(servers)}"
        server = ServerProcess(list(overrides), where, env=env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop(timeout=20)
