"""The online loop: reproducibility, the decision log, and learning policies that learn."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.errors import ConfigError
from bandits.policies import make_policy
from bandits.simulate import AudienceSettings, Environment, run_online


def _run(name: str, rounds: int, seed: int, settings: AudienceSettings | None = None, **kw):
    settings = settings or AudienceSettings()
    env = Environment(settings, np.random.SeedSequence([seed, 0]))
    return run_online(
        env, make_policy(name, kw), rounds, np.random.SeedSequence([seed, 1]), eval_rounds=3000
    )


def test_same_seed_same_numbers(small_settings):
    a = _run("lints", 900, 4, small_settings)
    b = _run("lints", 900, 4, small_settings)
    assert a.summary() == b.summary()
    assert a.log.equals(b.log)
    c = _run("lints", 900, 5, small_settings)
    assert c.summary() != a.summary()


def test_decision_log_carries_exact_propensities(small_settings):
    res = _run("epsilon_greedy", 700, 2, small_settings)
    log = res.log
    assert log.height == int(res.sent.sum())
    probs = np.stack(log["action_probs"].to_numpy())
    ids = list(Environment(small_settings, 0).catalog.variant_ids)
    idx = np.array([ids.index(a) for a in log["action"].to_list()])
    np.testing.assert_array_equal(log["propensity"].to_numpy(), probs[np.arange(log.height), idx])
    truth = np.stack(log["true_expected_reward"].to_numpy())
    np.testing.assert_array_equal(
        log["expected_reward"].to_numpy(), truth[np.arange(log.height), idx]
    )
    for col in ("round", "timestamp", "weather", "channel", "segment", "reward", "unsubscribed"):
        assert col in log.columns


def test_rounds_must_be_positive(small_settings):
    with pytest.raises(ConfigError, match="rounds must be > 0"):
        run_online(Environment(small_settings, 0), make_policy("uniform"), 0, 0)


@pytest.mark.parametrize("name", ["linucb", "vw"])
def test_contextual_policies_beat_uniform_on_default_audience(name):
    """On the default audience, LinUCB and VW beat uniform random on true value — both the
    online average and the final policy's value on held-out impressions — on every seed."""
    for seed in (1, 2):
        uniform = _run("uniform", 6000, seed).summary()
        learner = _run(name, 6000, seed).summary()
        assert learner["true_value"] > uniform["true_value"] + 0.03
        assert learner["final_policy_value"] > uniform["final_policy_value"] + 0.05


@pytest.mark.parametrize(("every", "delay"), [(37, 0), (200, 0), (1000, 2)])
def test_streamed_logs_and_curves_equal_the_result(small_settings, every, delay):
    import dataclasses

    import polars as pl

    settings = dataclasses.replace(small_settings, feedback_delay_days=delay)
    days, points = [], []
    res = run_online(
        Environment(settings, 4),
        make_policy("linucb"),
        1_150,  # not a multiple of the 200 impressions per day
        5,
        eval_rounds=0,
        on_log=days.append,
        on_curves=(every, points.append),
    )
    assert pl.concat(days).equals(res.log)
    assert len(days) == 6  # one call per simulated day
    assert pl.concat(points).equals(res.curves(every))  # bit for bit, streamed as it ran
    assert points[-1]["step"][-1] == 1_150


def test_curve_step_must_be_positive(small_settings):
    with pytest.raises(ConfigError, match="curve step must be > 0"):
        run_online(
            Environment(small_settings, 4), make_policy("uniform"), 100, 1, on_curves=(0, print)
        )


def test_keep_log_false_streams_the_same_rows_and_results(small_settings):
    import polars as pl

    def go(**kwargs):
        return run_online(
            Environment(small_settings, 4), make_policy("lints"), 900, 5, eval_rounds=300, **kwargs
        )

    full = go()
    days: list[pl.DataFrame] = []
    streamed = go(on_log=days.append, keep_log=False)
    bare = go(keep_log=False)  # no log built at all
    assert full.log.height > 0
    assert streamed.log.is_empty() and bare.log.is_empty()
    assert pl.concat(days).equals(full.log)
    for res in (streamed, bare):
        assert res.summary() == full.summary()
        assert res.curves(50).equals(full.curves(50))


def test_curve_sums_in_pieces_equal_prefix_cumsums_bit_for_bit():
    """CurveSums continues each running sum; the values must equal one cumsum over the whole
    prefix exactly (float addition is not associative, so a sum restarted per piece and
    offset by the previous total would differ in the last bits)."""
    from bandits.simulate.online import CurveSums, curve_steps

    rng = np.random.default_rng(0)
    n = 5_000
    reward = rng.random(n) * rng.integers(0, 2, n)
    expected = rng.random(n) / 3
    oracle = expected + rng.random(n) / 7
    unsub = rng.random(n) < 0.01
    steps = curve_steps(n, 37)
    sums, pieces = CurveSums(), []
    cuts = np.sort(rng.choice(np.arange(1, steps.size), size=20, replace=False))
    for part in np.split(steps, cuts):
        pieces.append(sums.frame(part, reward, expected, oracle, unsub))
    idx = steps - 1
    want = {
        "cumulative_reward": np.cumsum(reward)[idx],
        "true_value": np.cumsum(expected)[idx] / steps,
        "cumulative_regret": np.cumsum(oracle - expected)[idx],
        "cumulative_unsubscribes": np.cumsum(unsub)[idx].astype(np.float64),
    }
    import polars as pl

    got = pl.concat(pieces)
    assert got["step"].to_numpy().tolist() == steps.tolist()
    for name, values in want.items():
        assert np.array_equal(got[name].to_numpy(), values), name
    # a sum restarted per piece would not be exact: the test can tell the difference
    restarted = np.concatenate(
        [
            np.cumsum(reward[a:b]) + (np.cumsum(reward[:a])[-1] if a else 0.0)
            for a, b in zip([0, *cuts * 37], [*cuts * 37, n], strict=True)
        ]
    )
    assert not np.array_equal(restarted, np.cumsum(reward))
    with pytest.raises(ValueError, match="curve steps must be >"):
        sums.frame(steps[-2:], reward, expected, oracle, unsub)


def test_browsing_noise_is_the_generators_gumbel_draws(small_settings):
    """The browse choice draws its Gumbel noise as whole-array operations; the numbers (so
    the choices and everything after them) are those of ``Generator.gumbel`` on the same
    stream."""
    env = Environment(small_settings, 9)
    twin = np.random.default_rng()
    twin.bit_generator.state = env._rng.bit_generator.state
    got = env._browse_choice()
    want = (env._focus[:, None] * env.taste + twin.gumbel(size=env.taste.shape)).argmax(axis=1)
    assert np.array_equal(got, want)
    assert env._rng.bit_generator.state == twin.bit_generator.state  # same draws consumed
