"""The truth model: each knob moves what it should, and the truth is consistent."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from bandits.errors import ConfigError
from bandits.policies import make_policy
from bandits.simulate import AudienceSettings, Environment, Oracle, run_online
from bandits.simulate.knobs import DriftKnobs, ResponseKnobs, audience_settings_from_dict
from bandits.simulate.response import Impressions, truth


def _settings(**response) -> AudienceSettings:
    return AudienceSettings(
        n_users=800, impressions_per_day=400, response=ResponseKnobs(**response)
    )


def _truth_for(env: Environment, imp: Impressions, exposure=None, taste=None, **knobs):
    k = env.catalog.n_variants
    exposure = np.zeros((len(imp), k)) if exposure is None else exposure
    resp = dataclasses.replace(env.settings.response, **knobs)
    return truth(imp, env.population, env.world, env.catalog, resp, exposure, taste)


def _impressions(env: Environment, n: int = 300, **override) -> Impressions:
    imp, _ = env._draw_impressions(n, np.random.default_rng(1))
    fields = {f: getattr(imp, f) for f in imp.__dataclass_fields__}
    fields["last_viewed_category"] = env.last_view_cat[imp.user]
    fields["days_since_view"] = np.zeros(n, np.int64)
    for key, value in override.items():
        fields[key] = np.broadcast_to(value, (n,)).astype(np.int64)
    return Impressions(**fields)


@pytest.fixture
def env() -> Environment:
    return Environment(_settings(), 3)


def test_oracle_has_zero_regret_and_bounds_every_policy():
    settings = _settings()
    oracle = run_online(Environment(settings, 1), Oracle(), 2000, 2, eval_rounds=500)
    assert oracle.summary()["regret"] == 0.0
    uniform = run_online(Environment(settings, 1), make_policy("uniform"), 2000, 2, eval_rounds=500)
    sent = uniform.sent
    assert np.all(uniform.expected[sent] <= uniform.oracle[sent] + 1e-15)
    assert uniform.summary()["regret"] > 0
    assert oracle.summary()["final_policy_value"] >= uniform.summary()["final_policy_value"]


def test_expected_reward_matches_potential_outcomes(env):
    """Potential outcomes are Bernoulli draws of the exact probabilities (z-test)."""
    days = [env.next_day(400) for _ in range(6)]
    for d in days:
        env.commit(d, np.zeros(d.frame.height, np.int64))
    q = np.concatenate([d.truth.expected_reward for d in days])
    r = np.concatenate([d.potential_reward for d in days])
    z = (r.sum(0) - q.sum(0)) / np.sqrt((q * (1 - q)).sum(0))
    assert np.all(np.abs(z) < 4.5)


def test_taste_weight_controls_individual_taste(env):
    imp = _impressions(env)
    other_taste = env.population.taste + 1.0 * np.random.default_rng(5).standard_normal(
        env.population.taste.shape
    )
    base = _truth_for(env, imp, taste_weight=0.0).p_click
    moved = _truth_for(env, imp, taste=other_taste, taste_weight=0.0).p_click
    np.testing.assert_allclose(base, moved)
    with_taste = _truth_for(env, imp, taste_weight=1.0).p_click
    moved_taste = _truth_for(env, imp, taste=other_taste, taste_weight=1.0).p_click
    assert np.abs(with_taste - moved_taste).mean() > 0.01


def test_context_weight_controls_weather_and_time(env):
    sunny = _impressions(env, weather=0, daypart=0)
    snowy = _impressions(env, weather=3, daypart=2)
    off = [_truth_for(env, imp, context_weight=0.0).p_click for imp in (sunny, snowy)]
    np.testing.assert_allclose(off[0], off[1])
    on = [_truth_for(env, imp, context_weight=1.0).p_click for imp in (sunny, snowy)]
    assert np.abs(on[0] - on[1]).mean() > 0.01


def test_retargeting_effect_decays_and_depends_on_settledness(env):
    recent = _impressions(env, days_since_view=0)
    stale = _impressions(env, days_since_view=14)
    mentions = env.catalog.mentions_last_viewed
    settled = env.population.settled[recent.user] > 0.8
    unsettled = env.population.settled[recent.user] < 0.3
    assert settled.any() and unsettled.any()
    p_recent = _truth_for(env, recent).p_click[:, mentions]
    p_stale = _truth_for(env, stale).p_click[:, mentions]
    p_off = _truth_for(env, recent, retargeting_weight=0.0).p_click[:, mentions]
    # settled users: a recent view lifts retargeting; the lift fades with time
    assert (p_recent[settled] > p_off[settled]).all()
    assert (p_recent[settled] > p_stale[settled]).all()
    # unsettled users: retargeting does worse than without the effect (Lambrecht & Tucker)
    assert (p_recent[unsettled] < p_off[unsettled]).all()


def test_fatigue_lowers_clicks_and_creepiness_raises_unsubscribes(env):
    imp = _impressions(env)
    k = env.catalog.n_variants
    fresh = _truth_for(env, imp, exposure=np.zeros((len(imp), k)))
    tired = _truth_for(env, imp, exposure=np.full((len(imp), k), 5.0))
    assert (tired.p_click < fresh.p_click).all()
    assert (tired.p_unsubscribe > fresh.p_unsubscribe).all()
    no_fatigue = _truth_for(env, imp, exposure=np.full((len(imp), k), 5.0), fatigue_weight=0.0)
    np.testing.assert_allclose(no_fatigue.p_click, fresh.p_click)
    dims = env.catalog.personal_dims
    generic, personal = dims == 0, dims >= 2
    assert fresh.p_unsubscribe[:, personal].min() > fresh.p_unsubscribe[:, generic].max() * 0.99
    flat = _truth_for(env, imp, creepiness_weight=0.0).p_unsubscribe
    seg_rows = flat[:, generic].mean(axis=1)
    np.testing.assert_allclose(flat[:, personal].mean(axis=1), seg_rows)


def test_taste_observability_knob():
    exact = Environment(
        AudienceSettings(n_users=2000, response=ResponseKnobs(taste_observability=1.0)), 1
    )
    pop = exact.population
    np.testing.assert_array_equal(pop.preferred_category, pop.taste.argmax(axis=1))
    blind = Environment(
        AudienceSettings(n_users=2000, response=ResponseKnobs(taste_observability=0.0)), 1
    )
    agree = (blind.population.preferred_category == blind.population.taste.argmax(axis=1)).mean()
    assert agree < 0.3  # about 1/6 by chance


def test_unsubscribed_users_receive_nothing_more():
    settings = _settings(unsubscribe_base_logit=-2.0)
    result = run_online(Environment(settings, 4), make_policy("uniform"), 3000, 1, eval_rounds=0)
    s = result.summary()
    assert s["unsubscribes"] > 0 and s["lost_rounds"] > 0
    log = result.log
    first_unsub = (
        log.filter(pl.col("unsubscribed")).group_by("user_key").agg(pl.col("day").min().alias("d"))
    )
    assert first_unsub.height > 0
    # an unsubscribe takes effect from the next day on: no message after that day
    later = log.join(first_unsub, on="user_key").filter(pl.col("day") > pl.col("d"))
    assert later.height == 0
    # lost rounds carry no reward and no regret
    assert result.reward[~result.sent].sum() == 0
    assert (result.oracle - result.expected)[~result.sent].sum() == 0


def test_reward_kinds_scale_expected_reward(env):
    imp = _impressions(env)
    click = _truth_for(env, imp, reward="click").expected_reward
    conv = _truth_for(env, imp, reward="conversion").expected_reward
    revenue = _truth_for(env, imp, reward="revenue").expected_reward
    assert (conv <= click).all() and (conv > 0).all()
    assert revenue.mean() > conv.mean()  # order values are tens of currency units


def test_drift_changes_taste_over_days():
    settings = AudienceSettings(
        n_users=300, impressions_per_day=100, drift=DriftKnobs(taste_sd_per_day=0.2)
    )
    drifting = Environment(settings, 2)
    before = drifting.taste.copy()
    for _ in range(3):
        d = drifting.next_day(100)
        drifting.commit(d, np.zeros(d.frame.height, np.int64))
    assert np.abs(drifting.taste - before).mean() > 0.1


def test_feedback_delay_holds_back_learning():
    settings = dataclasses.replace(_settings(), feedback_delay_days=2, impressions_per_day=200)
    policy = make_policy("linucb")
    run_online(Environment(settings, 1), policy, 600, 1, eval_rounds=0)
    assert policy.n_updates_ == 200  # 3 days played, only day 0's feedback has arrived


def test_common_random_numbers_across_policies():
    a = run_online(Environment(_settings(), 9), make_policy("uniform"), 800, 1, eval_rounds=0)
    b = run_online(Environment(_settings(), 9), make_policy("fixed"), 800, 1, eval_rounds=0)
    first_day = a.log["day"] == 0
    cols = ["timestamp", "user_key", "weather", "channel", "last_viewed_category"]
    assert a.log.filter(first_day).select(cols).equals(b.log.filter(b.log["day"] == 0).select(cols))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"n_users": 0}, "audience.n_users"),
        ({"impressions_per_day": -1}, "audience.impressions_per_day"),
        ({"segment_shares": [1, 2]}, "audience.segment_shares"),
        ({"response": {"reward": "profit"}}, "audience.response.reward"),
        ({"response": {"taste_observability": 2}}, "taste_observability"),
        ({"response": {"no_such_knob": 1}}, "no_such_knob"),
        ({"catalog": {"variants": []}}, "catalog is empty"),
        ({"catalog": {"n_variants": 1}}, "n_variants"),
        (
            {
                "catalog": {
                    "variants": [{"variant_id": "a", "category": "cars"}, {"variant_id": "b"}]
                }
            },
            "unknown category 'cars'",
        ),
    ],
)
def test_bad_audience_settings_give_one_line_errors(data, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        Environment(audience_settings_from_dict(data), 0)
    assert "\n" not in str(err.value)
