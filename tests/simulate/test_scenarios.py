"""Named log scenarios: shapes, determinism, the rare-click shape, exact propensities."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.errors import ConfigError
from bandits.offline.evaluate import contexts_of, true_q
from bandits.policies import POLICIES, make_policy
from bandits.simulate.scenarios import (
    RARE_CLICK_RATE,
    SCENARIOS,
    ScenarioLog,
    SkewedSoftmaxLogger,
    make_scenario,
    rare_click_catalog,
)

N_VARIANTS = {"uniform": 12, "epsilon_greedy": 12, "deterministic": 12, "rare_clicks": 80}


@pytest.fixture(scope="module")
def logs() -> dict[str, ScenarioLog]:
    return {name: make_scenario(name, 3000, 11) for name in SCENARIOS}


@pytest.fixture(scope="module")
def rare_logs() -> list[ScenarioLog]:
    return [make_scenario("rare_clicks", 10_000, seed) for seed in (0, 1, 2)]


def test_every_scenario_is_listed():
    assert set(SCENARIOS) == set(N_VARIANTS)


@pytest.mark.parametrize("name", list(N_VARIANTS))
def test_shapes(logs, name):
    log = logs[name]
    data, k = log.data, N_VARIANTS[name]
    assert log.name == name and log.seed == 11 and log.n_rows == data.n == 3000
    assert data.n_actions == k and log.catalog.height == k
    assert tuple(log.catalog["variant_id"].to_list()) == data.action_ids
    assert data.action.shape == data.reward.shape == data.propensity.shape == (3000,)
    assert data.logging_probs is not None and data.logging_probs.shape == (3000, k)
    np.testing.assert_allclose(data.logging_probs.sum(axis=1), 1.0, atol=1e-12)
    q = true_q(data)
    assert q is not None and q.shape == (3000, k) and np.all((q >= 0) & (q <= 1))
    assert set(np.unique(data.reward)) <= {0.0, 1.0}
    assert log.logging_share.shape == (k,)
    summary = log.describe()
    assert summary["rows"] == 3000 and summary["variants"] == k
    for key in ("click_rate", "expected_click_rate", "propensity_min", "propensity_max"):
        assert 0.0 <= summary[key] <= 1.0, key


@pytest.mark.parametrize("name", list(N_VARIANTS))
def test_same_seed_same_frame(logs, name):
    again = make_scenario(name, 3000, 11)
    assert again.data.frame.equals(logs[name].data.frame)
    other = make_scenario(name, 3000, 12)
    assert not other.data.frame.equals(logs[name].data.frame)


@pytest.mark.parametrize("n_rows", [1, 999, 4321])
def test_row_count_is_exact(n_rows):
    """Unsubscribed users' lost rounds log no row: the scenario simulates a few more
    opportunities and cuts the log at exactly n_rows."""
    assert make_scenario("uniform", n_rows, 5).n_rows == n_rows


@pytest.mark.parametrize("name", list(N_VARIANTS))
def test_logged_propensity_is_the_probability_of_the_logged_action(logs, name):
    data = logs[name].data
    rows = np.arange(data.n)
    np.testing.assert_array_equal(data.propensity, data.logging_probs[rows, data.action])


@pytest.mark.parametrize(
    ("name", "logger"),
    [
        ("uniform", lambda: make_policy("uniform")),
        ("epsilon_greedy", lambda: make_policy("retargeting", {"epsilon": 0.3})),
        ("deterministic", lambda: make_policy("retargeting")),
        ("rare_clicks", SkewedSoftmaxLogger),
    ],
)
def test_logged_probabilities_are_the_loggers_action_probs(logs, name, logger):
    """Recomputing the logger's action_probs on the loaded log gives the logged
    distribution: the propensities are exactly the probabilities actions were drawn from."""
    data = logs[name].data
    probs = logger().reset(data.problem_spec(), 0).action_probs(contexts_of(data))
    np.testing.assert_allclose(probs, data.logging_probs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        data.propensity, probs[np.arange(data.n), data.action], rtol=1e-12, atol=1e-15
    )


def test_uniform_and_epsilon_greedy_propensities(logs):
    np.testing.assert_array_equal(logs["uniform"].data.propensity, 1.0 / 12)
    p = logs["epsilon_greedy"].data.propensity
    assert set(np.round(np.unique(p), 12)) == {round(0.3 / 12, 12), round(0.7 + 0.3 / 12, 12)}


def test_deterministic_has_propensity_one_everywhere(logs):
    data = logs["deterministic"].data
    np.testing.assert_array_equal(data.propensity, 1.0)
    assert np.all(data.logging_probs.max(axis=1) == 1.0)
    assert logs["deterministic"].propensity_range == (1.0, 1.0)


def test_rare_click_catalog_has_80_variants():
    cat = rare_click_catalog()
    assert cat.height == 80 and cat["variant_id"].n_unique() == 80
    assert cat["mentions_last_viewed"].sum() == 8
    assert set(cat["discount"].unique().to_list()) == {0, 10, 20, 30}


def test_rare_clicks_click_rate(rare_logs):
    """The logger's expected click rate is calibrated to 0.45 %; the realised rate is a
    Binomial(10,000, 0.45 %) draw (sd 0.07 pp): each log within 3.5 sd, the pooled within
    ~2.5 sd."""
    for log in rare_logs:
        assert log.data.n_actions == 80
        assert 0.004 <= log.expected_click_rate <= 0.005, log.describe()
        assert abs(log.expected_click_rate - RARE_CLICK_RATE) < 2e-4
        assert 0.002 <= log.click_rate <= 0.007, log.describe()
    pooled = np.mean([log.click_rate for log in rare_logs])
    assert 0.0035 <= pooled <= 0.0055, pooled
    assert len({log.describe()["base_logit"] for log in rare_logs}) == 3  # calibrated per seed


def test_rare_clicks_propensity_range(rare_logs):
    for log in rare_logs:
        low, high = log.propensity_range
        assert 1e-4 - 1e-12 <= low <= 3e-4, log.describe()
        assert 0.9 <= high <= 0.995, log.describe()
        floor = SkewedSoftmaxLogger().epsilon / 80
        assert log.data.logging_probs.min() >= floor - 1e-15
        p = log.data.propensity
        assert np.quantile(p, 0.01) < 0.01 and np.quantile(p, 0.99) > 0.8  # skewed throughout


def test_scenario_logger_is_private():
    assert "skewed_softmax" not in POLICIES
    assert SkewedSoftmaxLogger not in POLICIES.values()


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown scenario 'nope'"):
        make_scenario("nope", 100, 0)
    with pytest.raises(ConfigError, match="n_rows"):
        make_scenario("uniform", 0, 0)
    with pytest.raises(ConfigError, match="seed"):
        make_scenario("uniform", 100, -1)
