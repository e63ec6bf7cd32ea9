"""Behaviour of the rule-based baselines (beyond the conformance suite)."""

from __future__ import annotations

import numpy as np
import polars as pl

from bandits.policies import make_policy
from bandits.policies.base import Contexts


def test_retargeting_rules(small_spec, small_day):
    policy = make_policy("retargeting", {"max_days_since_view": 3}).reset(small_spec, 0)
    ctx = small_spec.contexts(small_day.frame)
    chosen = policy.action_probs(ctx).argmax(axis=1)
    catalog = small_spec.catalog
    mentions = catalog["mentions_last_viewed"].to_numpy()[chosen]
    recent = small_day.frame["days_since_view"].to_numpy() <= 3
    # a recent view → a variant mentioning it; otherwise a generic variant
    assert mentions[recent].all() and not mentions[~recent].any()
    # ...of the category last viewed, suiting the channel when one exists
    cats = np.asarray(catalog["category"].to_list(), dtype=object)[chosen]
    last = small_day.frame["last_viewed_category"].cast(str).to_numpy()
    assert (cats[~recent] == last[~recent]).mean() > 0.9
    channel = small_day.frame["channel"].cast(str).to_numpy()
    suits = np.array([catalog[f"suits_{c}"][int(a)] for c, a in zip(channel, chosen, strict=True)])
    assert suits.mean() > 0.95


def test_retargeting_handles_channels_the_catalog_does_not_describe(small_spec, small_day):
    policy = make_policy("retargeting").reset(small_spec, 0)
    ctx = small_spec.contexts(small_day.frame)
    odd = Contexts(ctx.frame.with_columns(pl.lit("carrier_pigeon").alias("channel")), ctx.X)
    probs = policy.action_probs(odd)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    recent = small_day.frame["days_since_view"].to_numpy() <= 7
    mentions = small_spec.catalog["mentions_last_viewed"].to_numpy()[probs.argmax(axis=1)]
    assert mentions[recent].all()


def test_ab_winner_tests_then_commits(small_spec, small_env):
    policy = make_policy("ab_winner", {"test_rounds": 150}).reset(small_spec, 0)
    day = small_env.next_day(200)
    dec = policy.play(small_spec.contexts(day.frame), day.potential_reward)
    k = small_spec.n_actions
    np.testing.assert_allclose(dec.propensities[:150], 1.0 / k)
    assert (dec.propensities[150:] == 1.0).all()
    assert len(set(dec.actions[150:].tolist())) == 1
    means = np.where(policy.counts_ > 0, policy.sums_ / np.maximum(policy.counts_, 1), -1)
    assert dec.actions[-1] == int(np.argmax(means))
