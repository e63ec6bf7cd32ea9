"""Conformance suite run over every registered policy (no edits needed for new ones).

Checks: probabilities are a distribution; sampled propensities are exactly the probability
of the sampled action; sampling follows the probabilities; equally seeded copies behave
identically; settings and learned state round-trip; compiled online loops make the same
decisions as the reference loop (sample + update per round); epsilon mixing floors every
probability at epsilon / K.

A policy whose input is more than the context (a table, columns of the log) runs here with its
``example_settings(spec)`` and the contexts extended by its ``example_frame(spec, frame)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bandits.policies import POLICIES, Policy, make_policy
from bandits.policies.base import sample_from

NAMES = sorted(POLICIES)


def _fresh(name: str, spec, seed: int = 3, **settings) -> Policy:
    settings = {**POLICIES[name].example_settings(spec), **settings}
    return make_policy(name, settings).reset(spec, seed)


def _ctx(name: str, spec, day):
    return spec.contexts(POLICIES[name].example_frame(spec, day.frame))


@pytest.mark.parametrize("name", NAMES)
def test_probabilities_are_distributions(name, small_spec, small_day):
    policy = _fresh(name, small_spec)
    ctx = _ctx(name, small_spec, small_day)
    for _ in range(2):
        probs = policy.action_probs(ctx)
        assert probs.shape == (len(ctx), small_spec.n_actions)
        assert np.all(probs >= 0)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
        policy.play(ctx, small_day.potential_reward)  # learn, then check again


@pytest.mark.parametrize("name", NAMES)
def test_sampled_propensity_is_probability_of_sampled_action(name, small_spec, small_day):
    policy = _fresh(name, small_spec)
    ctx = _ctx(name, small_spec, small_day)
    policy.play(ctx, small_day.potential_reward)  # some learned state
    dec = policy.sample(ctx)
    rows = np.arange(len(ctx))
    assert dec.actions.dtype == np.int64
    assert np.all((dec.actions >= 0) & (dec.actions < small_spec.n_actions))
    np.testing.assert_array_equal(dec.propensities, dec.probs[rows, dec.actions])
    assert np.all(dec.propensities > 0)
    if type(policy).probabilities == "exact":
        twin = _fresh(name, small_spec)
        twin.play(ctx, small_day.potential_reward)
        np.testing.assert_allclose(twin.action_probs(ctx), dec.probs, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_play_propensities_match_probabilities(name, small_spec, small_day):
    policy = _fresh(name, small_spec)
    ctx = _ctx(name, small_spec, small_day)
    dec = policy.play(ctx, small_day.potential_reward)
    rows = np.arange(len(ctx))
    np.testing.assert_array_equal(dec.propensities, dec.probs[rows, dec.actions])
    np.testing.assert_allclose(dec.probs.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_equally_seeded_copies_behave_identically(name, small_spec, small_env):
    day1 = small_env.next_day(150)
    a, b = _fresh(name, small_spec, seed=11), _fresh(name, small_spec, seed=11)
    ctx = _ctx(name, small_spec, day1)
    da = a.play(ctx, day1.potential_reward)
    db = b.play(ctx, day1.potential_reward)
    np.testing.assert_array_equal(da.actions, db.actions)
    np.testing.assert_array_equal(da.propensities, db.propensities)
    np.testing.assert_array_equal(a.sample(ctx).actions, b.sample(ctx).actions)


@pytest.mark.parametrize("name", NAMES)
def test_params_round_trip(name, small_spec):
    policy = make_policy(name)
    params = policy.get_params()
    assert "epsilon" in params and "update_every" in params
    clone = type(policy)(**params)
    assert clone.get_params() == params
    assert make_policy(name, params).get_params() == params
    # unknown settings are rejected with the policy's name
    with pytest.raises(ValueError, match=name):
        make_policy(name, {"no_such_setting": 1})


@pytest.mark.parametrize("name", NAMES)
def test_learned_state_round_trips(name, small_spec, small_day):
    policy = _fresh(name, small_spec)
    ctx = _ctx(name, small_spec, small_day)
    policy.play(ctx, small_day.potential_reward)
    clone = _fresh(name, small_spec, seed=99)
    clone.set_state(policy.get_state())
    if type(policy).probabilities == "exact":
        np.testing.assert_allclose(clone.action_probs(ctx), policy.action_probs(ctx), atol=1e-9)
    else:  # Monte-Carlo probabilities: equal up to sampling noise
        diff = np.abs(clone.action_probs(ctx) - policy.action_probs(ctx)).mean()
        assert diff < 0.05


@pytest.mark.parametrize("name", NAMES)
def test_sampling_follows_probabilities(name, small_spec, small_day):
    policy = _fresh(name, small_spec, epsilon=0.3)
    ctx = _ctx(name, small_spec, small_day).slice(0, 1)
    probs = policy.action_probs(ctx)[0]
    reps = 4000
    from bandits.policies.base import Contexts

    many = Contexts(
        frame=ctx.frame.select(ctx.frame.columns).sample(reps, with_replacement=True),
        X=np.repeat(ctx.X, reps, axis=0),
    )
    if type(policy).probabilities == "exact":
        counts = np.bincount(policy.sample(many).actions, minlength=len(probs))
        expected = probs * reps
        # chi-square statistic with K-1 dof; 60 is far in the tail for K=12
        chi2 = (((counts - expected) ** 2) / np.maximum(expected, 1e-9)).sum()
        assert chi2 < 60
    else:
        dec = policy.sample(many)
        np.testing.assert_array_equal(dec.propensities, dec.probs[np.arange(reps), dec.actions])


@pytest.mark.parametrize("name", NAMES)
def test_epsilon_floors_probabilities(name, small_spec, small_day):
    policy = _fresh(name, small_spec, epsilon=0.2)
    probs = policy.action_probs(_ctx(name, small_spec, small_day))
    assert probs.min() >= 0.2 / small_spec.n_actions - 1e-12


@pytest.mark.parametrize("name", [n for n in NAMES if POLICIES[n].probabilities == "exact"])
@pytest.mark.parametrize("update_every", [1, 7])
def test_online_loop_matches_reference_loop(name, update_every, small_spec, small_day):
    """The (possibly compiled) ``play`` makes exactly the decisions of the reference loop:
    sample a block with the current state, reveal the chosen rewards, update, repeat."""
    ctx = _ctx(name, small_spec, small_day)
    fast = _fresh(name, small_spec, seed=5, update_every=update_every, epsilon=0.05)
    ref = _fresh(name, small_spec, seed=5, update_every=update_every, epsilon=0.05)
    got = fast.play(ctx, small_day.potential_reward)
    uniforms = ref.rng_.random(len(ctx))
    actions = np.empty(len(ctx), np.int64)
    for start in range(0, len(ctx), update_every):
        part = ctx.slice(start, min(start + update_every, len(ctx)))
        probs = ref.action_probs(part)
        a, p = sample_from(probs, uniforms[start : start + len(part)])
        r = small_day.potential_reward[np.arange(start, start + len(part)), a]
        ref.update(part, a, r, p)
        actions[start : start + len(part)] = a
    np.testing.assert_array_equal(got.actions, actions)


def test_registry_names_match_configs():
    """Every registered policy has a Hydra config, and every config names a policy."""
    from pathlib import Path

    configs = {p.stem for p in (Path(__file__).parents[2] / "configs" / "policy").glob("*.yaml")}
    assert configs == set(POLICIES)
