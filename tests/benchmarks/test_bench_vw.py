"""The VW benchmark in its --quick form, and the VW fast path it times: the same decisions,
probabilities and propensities as the text path (Workspace.predict / learn on strings)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.policies import make_policy
from bandits.policies.vw import EXPLORERS
from experiments.benchmarks.vw import bench_vw


def test_bench_vw_quick():
    rows = bench_vw(quick=True)
    for r in rows:
        assert r.events > 0 and r.seconds > 0 and math.isfinite(r.rate)
        assert r.peers["VW -d file driver"] > 0


@pytest.mark.parametrize("explorer", sorted(EXPLORERS))
@pytest.mark.parametrize("update_every,epsilon", [(1, 0.0), (7, 0.05)])
def test_vw_fast_path_equals_text_path(explorer, update_every, epsilon, small_spec, small_env):
    day = small_env.next_day(250)
    ctx = small_spec.contexts(day.frame)
    settings = {"explorer": explorer, "update_every": update_every, "epsilon": epsilon}
    fast = make_policy("vw", settings).reset(small_spec, 3)
    text = make_policy("vw", settings).reset(small_spec, 3)
    a = fast.play(ctx, day.potential_reward)
    b = text._play_text(ctx, day.potential_reward)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.propensities, b.propensities)
    np.testing.assert_array_equal(a.propensities, a.probs[np.arange(len(ctx)), a.actions])
    # learned states agree too: the next day's probabilities are identical
    nxt = small_spec.contexts(small_env.next_day(60).frame)
    np.testing.assert_array_equal(fast.action_probs(nxt), text.action_probs(nxt))


def test_vw_update_fast_path_equals_text_learning(small_spec, small_env):
    day = small_env.next_day(200)
    ctx = small_spec.contexts(day.frame)
    logger = make_policy("uniform").reset(small_spec, 0).sample(ctx)
    rewards = day.potential_reward[np.arange(len(ctx)), logger.actions]
    fast = make_policy("vw").reset(small_spec, 1)
    fast.update(ctx, logger.actions, rewards, logger.propensities)
    text = make_policy("vw").reset(small_spec, 1)
    for i, ex in enumerate(text._examples(ctx)):
        ex = list(ex)
        a = int(logger.actions[i])
        ex[1 + a] = f"0:{-float(rewards[i])}:{float(logger.propensities[i])} {ex[1 + a]}"
        text.vw_.learn(ex)
    np.testing.assert_array_equal(fast.action_probs(ctx), text.action_probs(ctx))


def test_vw_cached_examples_follow_set_state(small_spec, small_day):
    """Parsed examples belong to one workspace: after set_state the cache is rebuilt."""
    ctx = small_spec.contexts(small_day.frame)
    a = make_policy("vw").reset(small_spec, 2)
    a.play(ctx, small_day.potential_reward)
    b = make_policy("vw").reset(small_spec, 7)
    b.action_probs(ctx)  # fills b's cache with b's workspace
    b.set_state(a.get_state())
    np.testing.assert_array_equal(b.action_probs(ctx), a.action_probs(ctx))
