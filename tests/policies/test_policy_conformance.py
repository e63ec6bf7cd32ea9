"""Conformance suite run over every registered policy (no edits needed for new ones: a
policy module discovered by the registry, including one in ``BANDITS_POLICY_PATH``, is
collected here; ``test_policy_discovery.py`` checks that with a throwaway plugin).

Checks: probabilities are a distribution; sampled propensities are exactly the probability
of the sampled action; sampling follows the probabilities; equally seeded copies behave
identically; settings are explicit keyword arguments and round-trip (``get_settings``,
``clone``); the YAML config lists every setting with the constructor's default; an unbound
policy says so in one line; learned state round-trips; the policy's own (possibly compiled)
``play`` and ``replay`` make exactly the decisions of the reference loops and leave exactly
their state (every attribute ending in ``_``, ``get_state()`` and ``n_updates_``); the
reference online loop matches one written here; epsilon mixing floors every probability at
epsilon / K.

Each policy runs with its own test settings, ``example_settings(spec)`` (e.g. the table of a
policy whose input is more than the context), on contexts extended by its
``example_frame(spec, frame)``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from bandits.data import load_log
from bandits.errors import NotFittedError
from bandits.policies import POLICIES, Policy, make_policy
from bandits.policies.base import sample_from
from bandits.policies.registry import plugin_dirs
from bandits.simulate import run_online

NAMES = sorted(POLICIES)
CONFIGS = Path(__file__).parents[2] / "configs" / "policy"


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


def _config_dirs() -> list[Path]:
    """Where policy YAMLs live: ``configs/policy`` and ``<dir>/policy`` of every plugin dir."""
    return [CONFIGS, *(d / "policy" for d in plugin_dirs())]


def _config(name: str) -> dict[str, Any]:
    for directory in _config_dirs():
        path = directory / f"{name}.yaml"
        if path.is_file():
            return yaml.safe_load(path.read_text())
    raise AssertionError(f"policy '{name}' has no YAML in {[str(d) for d in _config_dirs()]}")


def test_registry_names_match_configs():
    """Every registered policy has a config, and every config names a policy."""
    configs = {p.stem for d in _config_dirs() for p in d.glob("*.yaml")}
    assert configs == set(POLICIES)


@pytest.mark.parametrize("name", NAMES)
def test_yaml_lists_every_setting_with_the_constructor_default(name):
    """``configs/policy/<name>.yaml`` is the policy's documentation: its ``name``, and every
    setting (but ``ignored_settings``, and ``update_every`` of a policy that does not learn)
    with exactly the constructor's default (lists as tuples)."""
    cls = POLICIES[name]
    config = _config(name)
    assert config.pop("name") == name
    defaults = cls.setting_defaults()
    wanted = set(defaults) - set(cls.ignored_settings)
    if not cls.learns:
        wanted.discard("update_every")
    extra = set(config) - set(defaults)
    assert not extra, f"YAML keys that are not settings: {sorted(extra)}"
    assert wanted <= set(config), f"settings missing from the YAML: {sorted(wanted - set(config))}"
    for key, value in config.items():
        value = tuple(value) if isinstance(value, list) else value
        assert value == defaults[key], f"{name}.{key}: YAML {value!r} != default {defaults[key]!r}"


@pytest.mark.parametrize("name", NAMES)
def test_settings_are_explicit_keyword_arguments(name):
    """Every setting is a keyword argument of the class's own ``__init__`` (no ``**kwargs``
    collected through the hierarchy), stored under its name; ``clone`` is a fresh, unbound
    copy with the same settings."""
    cls = POLICIES[name]
    params = inspect.signature(cls.__init__).parameters.values()
    assert all(p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params)
    assert {"epsilon", "update_every"} <= set(cls.setting_names())
    policy = make_policy(name)
    assert policy.get_settings() == cls.setting_defaults()
    twin = policy.clone(epsilon=0.25)
    assert type(twin) is cls and twin is not policy
    assert twin.get_settings() == {**policy.get_settings(), "epsilon": 0.25}


@pytest.mark.parametrize("name", NAMES)
def test_unbound_policy_says_so_in_one_line(name, small_spec, small_day):
    policy = make_policy(name, POLICIES[name].example_settings(small_spec))
    ctx = _ctx(name, small_spec, small_day)
    message = f"policy '{name}' is not bound to a problem: call bind(spec) first"
    for call in (
        lambda: policy.action_probs(ctx),
        lambda: policy.sample(ctx),
        lambda: policy.play(ctx, small_day.potential_reward),
        lambda: policy.clone(seed=1),
    ):
        with pytest.raises(NotFittedError) as info:
            call()
        assert str(info.value) == message


@pytest.mark.parametrize("name", NAMES)
def test_clone_with_a_seed_is_a_fresh_twin(name, small_spec, small_day):
    """``clone(seed=s)`` of a bound (and trained) policy = the same settings bound afresh to
    the same problem with seed ``s``."""
    ctx = _ctx(name, small_spec, small_day)
    trained = _fresh(name, small_spec, seed=3, epsilon=0.1)
    trained.play(ctx, small_day.potential_reward)
    twin = trained.clone(seed=8)
    fresh = _fresh(name, small_spec, seed=8, epsilon=0.1)
    assert twin.n_updates_ == 0
    a = twin.play(ctx, small_day.potential_reward)
    b = fresh.play(ctx, small_day.potential_reward)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.probs, b.probs)
    _assert_same_state(twin, fresh)


def _same(key: str, x: Any, y: Any) -> None:
    if x is y:
        return
    if isinstance(x, np.ndarray):
        assert isinstance(y, np.ndarray) and x.dtype == y.dtype, key
        np.testing.assert_array_equal(x, y, err_msg=key)
    elif isinstance(x, np.random.Generator):
        assert x.bit_generator.state == y.bit_generator.state, key
    elif isinstance(x, pl.DataFrame):
        assert x.equals(y), key
    elif key == "vw_":
        return  # a VW workspace: compared through get_state (the saved model's bytes)
    else:
        assert type(x) is type(y) and x == y, f"{key}: {x!r} != {y!r}"


def _assert_same_state(a: Policy, b: Policy) -> None:
    """Full state equality: every attribute ending in ``_`` (arrays bit for bit, the
    generators' states) and ``get_state()``."""
    keys_a = sorted(k for k in vars(a) if k.endswith("_"))
    keys_b = sorted(k for k in vars(b) if k.endswith("_"))
    assert keys_a == keys_b
    for key in keys_a:
        _same(key, getattr(a, key), getattr(b, key))
    state_a, state_b = a.get_state(), b.get_state()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        _same(key, state_a[key], state_b[key])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("settings", [{}, {"update_every": 7, "epsilon": 0.05}])
def test_play_equals_the_reference_with_full_state(name, settings, small_spec, small_env):
    """The policy's own ``play`` (compiled where it has one) = the reference loop: the same
    decisions, propensities and probabilities, and the same state — over two days, so the
    second starts from learned state."""
    fast = _fresh(name, small_spec, seed=5, **settings)
    ref = _fresh(name, small_spec, seed=5, **settings)
    for _ in range(2):
        day = small_env.next_day(150)
        ctx = _ctx(name, small_spec, day)
        got = fast.play(ctx, day.potential_reward)
        want = ref.play(ctx, day.potential_reward, reference=True)
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.propensities, want.propensities)
        np.testing.assert_array_equal(got.probs, want.probs)
        _assert_same_state(fast, ref)
    assert fast.n_updates_ == (300 if POLICIES[name].learns else 0)


@pytest.fixture(scope="module")
def uniform_log():
    """A 600-event log of the uniform policy on a small audience (every action supported)."""
    from bandits.simulate import AudienceSettings, Environment

    env = Environment(AudienceSettings(n_users=500, impressions_per_day=200), 21)
    res = run_online(env, make_policy("uniform"), 600, np.random.SeedSequence(4), eval_rounds=0)
    return load_log(res.log, catalog=env.catalog.to_frame())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("need_pi", [True, False])
def test_replay_equals_the_reference_with_full_state(name, need_pi, uniform_log):
    """The policy's own ``replay`` (compiled where it has one) = the reference loop: the same
    acceptances, the same probabilities of the logged actions where it computes them (all
    events with ``need_pi``), the same state, ``n_updates_`` = the accepted events."""
    data = uniform_log
    spec = data.problem_spec()
    ctx = _ctx_of(name, spec, data.frame)
    u = np.random.default_rng(9).random(data.n)
    c = float(data.propensity.min())
    out = {}
    for reference in (False, True):
        policy = _fresh(name, spec, seed=5, epsilon=0.05)
        accepted, pi = policy.replay(
            ctx,
            data.action,
            data.reward,
            data.propensity,
            u,
            c,
            need_pi=need_pi,
            reference=reference,
        )
        out[reference] = (policy, accepted, pi)
    (fast, acc, pi), (ref, acc_ref, pi_ref) = out[False], out[True]
    assert acc.dtype == bool and acc.shape == (data.n,)
    np.testing.assert_array_equal(acc, acc_ref)
    assert 0 < acc.sum() < data.n
    assert not np.isnan(pi_ref).any()
    known = ~np.isnan(pi)
    if need_pi:
        assert known.all()
    np.testing.assert_array_equal(pi[known], pi_ref[known])
    _assert_same_state(fast, ref)
    assert fast.n_updates_ == ref.n_updates_ == int(acc.sum())


def _ctx_of(name: str, spec, frame: pl.DataFrame):
    return spec.contexts(POLICIES[name].example_frame(spec, frame))
