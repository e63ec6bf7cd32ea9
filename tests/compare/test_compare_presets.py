"""Each scenario preset's verdict matches the truth its comments state: the verdict over
replications (each a fresh draw of the preset's audience and fresh policy seeds), with one
Holm family over every pair of rungs.

The default (CI) versions use 6 replications of 8,000 rounds and 5,000 users; the ``slow``
versions run the presets as shipped (20,000 rounds, 20,000 users, with Vowpal Wabbit), 10
replications, two root seeds. Tiny campaigns: ``test_replications.py``.
"""

from __future__ import annotations

import pytest
from presets import PRESETS, ladder, preset

from bandits.compare import BETTER, INCONCLUSIVE, WORSE, compare_family, find_pair, ladder_pairs
from bandits.simulate.replications import ReplicatedLadder, run_replications

NOT_BETTER = {WORSE, INCONCLUSIVE}
NOT_WORSE = {BETTER, INCONCLUSIVE}

#: preset -> {rung: allowed verdicts vs the preset's baseline}, as the preset's comments say
TRUTH = {
    "retargeting_wins": {"linucb": {WORSE}, "one_for_all": NOT_BETTER},
    "segments_suffice": {"linucb": NOT_BETTER, "retargeting": {WORSE}},
    "individualization_wins": {"linucb": {BETTER}, "segments": NOT_BETTER},
    "context_matters": {"linucb": {BETTER}, "retargeting": {WORSE}},
    "over_personalization_backfires": {"linucb": {BETTER}, "segments": {BETTER}},
}


def _compare(name, rounds, seed, replications, *overrides, with_vw=False):
    settings, baseline = preset(name, *overrides)
    reps = run_replications(
        settings, ladder(with_vw), rounds, seed, range(replications), eval_rounds=0
    )
    over = ReplicatedLadder(tuple(reps))
    values = over.point_values()
    family = compare_family(
        over.evidence(ladder_pairs(over.labels, baseline)), values, replications=over.n
    )
    return family, over, baseline


def test_every_preset_has_a_stated_truth():
    assert set(TRUTH) == set(PRESETS)


def _check(name, family, over, baseline):
    for rung, allowed in TRUTH[name].items():
        said, c = find_pair(family, rung, baseline)
        assert said in allowed, (name, rung, c.sentence())
    if name == "over_personalization_backfires":
        unsub = over.point_costs()
        assert unsub["retargeting"] > 2 * unsub["linucb"]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_verdicts_match_their_truth(name):
    family, over, baseline = _compare(name, 8000, 3, 6, "audience.n_users=5000")
    _check(name, family, over, baseline)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("seed", [1, 2])
def test_preset_verdicts_as_shipped(name, seed):
    family, over, baseline = _compare(name, 20_000, seed, 10, with_vw=True)
    _check(name, family, over, baseline)
