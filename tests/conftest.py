"""Shared fixtures: a small synthetic audience and its problem spec."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.simulate import AudienceSettings, Environment, problem_spec


@pytest.fixture
def small_settings() -> AudienceSettings:
    return AudienceSettings(n_users=500, impressions_per_day=200)


@pytest.fixture
def small_env(small_settings: AudienceSettings) -> Environment:
    return Environment(small_settings, 7)


@pytest.fixture
def small_day(small_env: Environment):
    return small_env.next_day(200)


@pytest.fixture
def small_spec(small_env: Environment):
    return problem_spec(small_env)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
