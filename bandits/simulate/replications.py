"""Replications of the personalization ladder: the unit of evidence of a simulated verdict.

**Estimand.** A simulated comparison answers a question about *policies*: the expected reward
per impression of each rung over a campaign of ``rounds`` impression opportunities on an
audience with these settings, in expectation over the policy's own randomness (its
exploration) and over the audience's (the world and users the settings draw, who arrives
when, how they respond). One run is one draw of that. ``R`` independent replications
estimate it: the difference between two rungs is the mean over replications of each run's
*exact* Δ — the simulator's expected rewards of the variants the rungs chose, averaged over
the campaign's rounds, so response noise does not blur it — with a Student-t interval on
``R - 1`` degrees of freedom (:func:`bandits.compare.replicated_difference`).

**Seeds.** One root seed drives everything: the same settings and seed give the same numbers.
Replication ``i`` uses ``SeedSequence(seed).spawn(R)[i]`` (:func:`replication_seed`; it does
not depend on ``R``, so a longer series extends a shorter one). That spawns the environment
seed, shared by every rung of the replication (common random numbers: the same world, users,
contexts and potential outcomes), and a seed for the rungs' policies, from which each rung's
own seed is derived by its label: rungs draw *independent* policy seeds (the same policy
listed twice is a genuine A/A), and dropping a rung leaves the others' numbers unchanged.

**Summary.** A :class:`Replication` keeps what the verdict and its diagnostics need, not the
per-round arrays: per rung its exact value and cost, its realised mean reward,
:meth:`~bandits.simulate.online.OnlineResult.summary`, per-block sums (one run's batch means,
for the within-run diagnostic and the one-replication fallback), per-group sums (who gains)
and its curves. It round-trips through JSON (:meth:`Replication.to_dict` /
:meth:`Replication.from_dict`), so a replication finished earlier can be reused.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bandits.compare import (
    PairedDifference,
    PairEvidence,
    block_edges,
    blocked_difference,
    replicated_difference,
    replicated_group_lifts,
)
from bandits.policies.base import Policy
from bandits.simulate.knobs import AudienceSettings
from bandits.simulate.ladder import GROUP_DIMENSIONS, round_groups, run_ladder
from bandits.simulate.online import OnlineResult

#: version of :meth:`Replication.to_dict`'s layout (part of what a reusable replication must
#: match)
FORMAT = 1
#: curve points kept per rung and replication
CURVE_POINTS = 200
#: what the block sums hold, per rung: realised reward, exact expected reward, exact
#: unsubscribe probability of the chosen variant (each summed over the block's rounds)
BLOCK_SERIES = ("reward", "value", "cost")


def replication_seed(seed: int, index: int) -> np.random.SeedSequence:
    """Seed of replication ``index``: ``SeedSequence(seed).spawn(R)[index]`` for any
    ``R > index`` (a spawned child is ``SeedSequence(seed, spawn_key=(index,))``)."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(index),))


def _label_key(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "little")


def replication_seeds(
    seed: int, index: int, labels: Iterable[str]
) -> tuple[np.random.SeedSequence, dict[str, np.random.SeedSequence]]:
    """(environment seed, label → policy seed) of replication ``index``. The environment
    seed is shared by every rung (common random numbers); each rung's policy seed is its own,
    derived from the replication's policy stream and the rung's label."""
    env_ss, policy_ss = replication_seed(seed, index).spawn(2)
    own = {
        label: np.random.SeedSequence(
            policy_ss.entropy, spawn_key=(*policy_ss.spawn_key, _label_key(label))
        )
        for label in labels
    }
    return env_ss, own


def unbound(policy: Policy) -> Policy:
    """A fresh, unbound copy of ``policy`` with the same settings (``type(p)(**params)``)."""
    return type(policy)(**policy.get_params())


@dataclass(frozen=True)
class RungRun:
    """One rung in one replication.

    ``value`` / ``cost`` are exact: the simulator's expected reward / unsubscribe
    probability of the variant chosen, averaged over every impression opportunity (lost
    rounds count as 0); ``observed`` is the realised mean reward. ``blocks[s]`` ``(B,)``
    holds the sums over each block of rounds of series ``s`` in :data:`BLOCK_SERIES`;
    ``cells[dim]`` ``(G,)`` the sums of expected reward over each group's rounds (groups in
    :attr:`Replication.groups`); ``curves`` the columns of
    :meth:`~bandits.simulate.online.OnlineResult.curves` (each ``(steps,)``)."""

    policy: str
    params: dict[str, Any]
    summary: dict[str, float]
    value: float
    cost: float
    observed: float
    blocks: dict[str, np.ndarray]
    cells: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]


@dataclass(frozen=True)
class Replication:
    """The summary of one replication of the ladder: ``index`` (its seed, see
    :func:`replication_seed`), ``rounds`` per rung, ``block_sizes (B,)``, the context groups
    (``groups[dim]``: ``G`` labels; ``counts[dim]`` ``(G,)``: rounds per group, the same for
    every rung under common random numbers), each rung's :class:`RungRun` and the wall time
    it took (``seconds``)."""

    index: int
    rounds: int
    block_sizes: np.ndarray
    groups: dict[str, list[str]]
    counts: dict[str, np.ndarray]
    rungs: dict[str, RungRun]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (arrays as lists); :meth:`from_dict` reads it back."""

        def arrays(d: Mapping[str, np.ndarray]) -> dict[str, list]:
            return {k: np.asarray(v).tolist() for k, v in d.items()}

        return {
            "format": FORMAT,
            "index": self.index,
            "rounds": self.rounds,
            "block_sizes": self.block_sizes.tolist(),
            "groups": self.groups,
            "counts": arrays(self.counts),
            "seconds": self.seconds,
            "rungs": {
                label: {
                    "policy": r.policy,
                    "params": {k: _jsonable(v) for k, v in r.params.items()},
                    "summary": r.summary,
                    "value": r.value,
                    "cost": r.cost,
                    "observed": r.observed,
                    "blocks": arrays(r.blocks),
                    "cells": arrays(r.cells),
                    "curves": arrays(r.curves),
                }
                for label, r in self.rungs.items()
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Replication:
        """Read :meth:`to_dict`'s output back (ValueError on another format)."""
        if d.get("format") != FORMAT:
            raise ValueError(f"replication format {d.get('format')!r}, expected {FORMAT}")

        def arrays(x: Mapping[str, list], dtype: Any = np.float64) -> dict[str, np.ndarray]:
            return {k: np.asarray(v, dtype=dtype) for k, v in x.items()}

        rungs = {
            label: RungRun(
                policy=r["policy"],
                params=dict(r["params"]),
                summary={k: float(v) for k, v in r["summary"].items()},
                value=float(r["value"]),
                cost=float(r["cost"]),
                observed=float(r["observed"]),
                blocks=arrays(r["blocks"]),
                cells=arrays(r["cells"]),
                curves=arrays(r["curves"]),
            )
            for label, r in d["rungs"].items()
        }
        return cls(
            index=int(d["index"]),
            rounds=int(d["rounds"]),
            block_sizes=np.asarray(d["block_sizes"], dtype=np.int64),
            groups={k: list(v) for k, v in d["groups"].items()},
            counts=arrays(d["counts"], np.int64),
            rungs=rungs,
            seconds=float(d["seconds"]),
        )


def _jsonable(v: Any) -> Any:
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


def summarise(
    results: Mapping[str, OnlineResult],
    index: int,
    *,
    n_blocks: int = 50,
    dimensions: Sequence[str] = GROUP_DIMENSIONS,
    seconds: float = 0.0,
) -> Replication:
    """The :class:`Replication` of one run of the ladder (label → result, common random
    numbers). Blocks: ``min(n_blocks, rounds // 10)`` contiguous blocks of rounds (at least
    1), as :func:`bandits.compare.paired_difference` cuts them."""
    rounds = next(iter(results.values())).rounds
    blocks = max(1, min(int(n_blocks), rounds // 10))
    edges = block_edges(rounds, blocks)
    labels = round_groups(results, dimensions)
    groups: dict[str, list[str]] = {}
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # dim -> (valid mask, group code)
    counts: dict[str, np.ndarray] = {}
    for dim, lab in labels.items():
        valid = np.array([x is not None and x != "" for x in lab], dtype=bool)
        names, code = np.unique(lab[valid].astype(str), return_inverse=True)
        groups[dim] = names.tolist()
        codes[dim] = (valid, code)
        counts[dim] = np.bincount(code, minlength=len(names)).astype(np.int64)
    every = max(1, rounds // CURVE_POINTS)
    rungs = {}
    for label, r in results.items():
        p_unsub = (
            r.expected_unsubscribe
            if r.expected_unsubscribe is not None
            else r.unsubscribed.astype(np.float64)
        )
        series = {"reward": r.reward, "value": r.expected, "cost": p_unsub}
        cells = {
            dim: np.bincount(code, weights=r.expected[valid], minlength=len(groups[dim]))
            for dim, (valid, code) in codes.items()
        }
        curves = r.curves(every)
        rungs[label] = RungRun(
            policy=r.policy,
            params=dict(r.params),
            summary=r.summary(),
            value=float(r.expected.mean()),
            cost=float(p_unsub.mean()),
            observed=float(r.reward.mean()),
            blocks={s: np.add.reduceat(x, edges[:-1]) for s, x in series.items()},
            cells=cells,
            curves={c: curves[c].to_numpy().astype(np.float64) for c in curves.columns},
        )
    return Replication(
        index=int(index),
        rounds=int(rounds),
        block_sizes=np.diff(edges),
        groups=groups,
        counts=counts,
        rungs=rungs,
        seconds=float(seconds),
    )


def run_replication(
    settings: AudienceSettings,
    policies: Mapping[str, Policy],
    rounds: int,
    seed: int,
    index: int,
    *,
    eval_rounds: int = 5000,
    n_blocks: int = 50,
    bundle_dir: str | None = None,
) -> Replication:
    """Replication ``index`` of the ladder (label → policy; copies are run, the given
    policies are left unbound): a fresh audience realisation shared by every rung, each rung
    with its own policy seed (:func:`replication_seeds`), summarised by :func:`summarise`.

    ``bundle_dir``: each learning rung's policy, as it ended the run, is also saved there as
    a deployable bundle ``<bundle_dir>/<label>`` (:func:`bandits.deploy.save_bundle`)."""
    t0 = time.perf_counter()
    env_ss, own = replication_seeds(seed, index, policies)
    fresh = {label: unbound(p) for label, p in policies.items()}
    results = run_ladder(settings, fresh, rounds, env_ss, eval_rounds=eval_rounds, policy_seeds=own)
    seconds = time.perf_counter() - t0
    if bundle_dir is not None:
        from bandits.deploy.bundle import save_bundle

        for label, policy in fresh.items():
            if policy.learns:
                save_bundle(Path(bundle_dir) / label, policy)
    return summarise(results, index, n_blocks=n_blocks, seconds=seconds)


def run_replications(
    settings: AudienceSettings,
    policies: Mapping[str, Policy],
    rounds: int,
    seed: int,
    indices: Iterable[int],
    *,
    eval_rounds: int = 5000,
    n_blocks: int = 50,
    n_jobs: int = 1,
    on_done: Callable[[Replication], None] | None = None,
    bundle_dir: str | None = None,
) -> list[Replication]:
    """Run the replications ``indices`` (see :func:`run_replication`), in ``n_jobs``
    joblib (loky) worker processes when ``n_jobs != 1`` (``-1``: one per core) — or, when
    this process chose Ray (:func:`bandits.cluster.use`, ``compare
    engine=ray``), as one Ray task each (Ray's CPUs bound how many run at once) — and return
    them sorted by index. ``on_done`` is called in this process with each replication as it
    finishes (in completion order). Which worker runs what does not change any number: each
    replication depends only on its own seed. ``bundle_dir``: replication 0's learning
    policies are saved there as bundles (see :func:`run_replication`)."""
    todo = [int(i) for i in indices]
    done: list[Replication] = []

    def collect(rep: Replication) -> None:
        done.append(rep)
        if on_done is not None:
            on_done(rep)

    def options(i: int) -> dict[str, Any]:
        """The keywords of replication ``i``'s :func:`run_replication` call."""
        return {
            "eval_rounds": eval_rounds,
            "n_blocks": n_blocks,
            "bundle_dir": bundle_dir if i == 0 else None,
        }

    here = todo  # the replications run in this process
    elsewhere: Iterable[Replication] = ()
    if n_jobs != 1 and len(todo) > 1 and _ray_active():  # compare engine=ray: same numbers
        from bandits import cluster

        # the bundles are files for this process to log: on a cluster with other machines,
        # the replication that writes them runs here, while the others run on Ray
        here = [0] if bundle_dir is not None and 0 in todo and cluster.remote_nodes() else []
        calls = [((rounds, seed, i), options(i)) for i in todo if i not in here]
        elsewhere = cluster.map_unordered(run_replication, calls, shared=(settings, dict(policies)))
    elif n_jobs != 1 and len(todo) > 1:
        from joblib import Parallel, delayed

        tasks = (
            delayed(run_replication)(settings, policies, rounds, seed, i, **options(i))
            for i in todo
        )
        here, elsewhere = [], Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks)
    for i in here:
        collect(run_replication(settings, policies, rounds, seed, i, **options(i)))
    for rep in elsewhere:
        collect(rep)
    return sorted(done, key=lambda r: r.index)


def _ray_active() -> bool:
    """Whether this process chose Ray as its engine (:func:`bandits.cluster.active`)."""
    import sys

    cluster = sys.modules.get("bandits.cluster")
    return cluster is not None and bool(cluster.active())


@dataclass(frozen=True)
class ReplicatedLadder:
    """The replications of one comparison, sorted by index, and what the verdict needs from
    them. With two or more replications every figure is over replications; with one, the
    within-run batch means of that run (its only evidence) — :attr:`over_replications`
    says which."""

    replications: tuple[Replication, ...]

    def __post_init__(self) -> None:
        if not self.replications:
            raise ValueError("no replications")

    @property
    def n(self) -> int:
        return len(self.replications)

    @property
    def labels(self) -> list[str]:
        return list(self.replications[0].rungs)

    @property
    def rounds(self) -> int:
        return self.replications[0].rounds

    @property
    def over_replications(self) -> bool:
        """Whether an interval over replications exists (at least two)."""
        return self.n >= 2

    def per_replication(self, label: str, what: str = "value") -> np.ndarray:
        """``(R,)``: rung ``label``'s ``value`` (exact reward per impression), ``cost``
        (exact unsubscribes per impression) or ``observed`` (realised reward per impression)
        in each replication."""
        return np.array([getattr(r.rungs[label], what) for r in self.replications])

    def point_values(self) -> dict[str, float]:
        """Each rung's estimated reward per impression: the mean exact value over the
        replications (one replication: its realised mean, what its verdict is about)."""
        what = "value" if self.over_replications else "observed"
        return {k: float(self.per_replication(k, what).mean()) for k in self.labels}

    def point_costs(self) -> dict[str, float]:
        """Each rung's mean exact unsubscribes per impression."""
        return {k: float(self.per_replication(k, "cost").mean()) for k in self.labels}

    def _within(self, rep: Replication, a: str, b: str | None, series: str) -> PairedDifference:
        sums = rep.rungs[a].blocks[series]
        if b is not None:
            sums = sums - rep.rungs[b].blocks[series]
        return blocked_difference(sums, rep.block_sizes)

    def _estimate(self, a: str, b: str | None, what: str, series: str) -> PairedDifference:
        """``a``'s ``what`` minus ``b``'s (``b`` None: ``a``'s own), over replications; with
        one replication, that run's batch means of ``series``."""
        if self.over_replications:
            x = self.per_replication(a, what)
            if b is not None:
                x = x - self.per_replication(b, what)
            return replicated_difference(x)
        return self._within(self.replications[0], a, b, series)

    def evidence(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], PairEvidence]:
        """What each pair's verdict rests on. Over replications: the per-replication exact
        Δ (:func:`~bandits.compare.replicated_difference`), the exact unsubscribe Δ, the mean
        realised Δ and the root mean square of each run's batch-means standard error of the
        realised Δ (what one run would have claimed). One replication: that run's batch
        means of the realised rewards (the old one-run verdict), its exact Δ as the truth."""
        out = {}
        for a, b in pairs:
            diff = self._estimate(a, b, "value", "reward")
            cost = self._estimate(a, b, "cost", "cost")
            within = [self._within(r, a, b, "reward").stderr for r in self.replications]
            rms = math.sqrt(float(np.mean(np.square(within))))
            if self.over_replications:
                observed = self.per_replication(a, "observed") - self.per_replication(b, "observed")
                out[(a, b)] = PairEvidence(diff, cost, float(observed.mean()), rms, None)
            else:
                rep = self.replications[0]
                true = rep.rungs[a].value - rep.rungs[b].value
                out[(a, b)] = PairEvidence(diff, cost, None, rms, true)
        return out

    def cost_evidence(
        self, baseline: str
    ) -> tuple[dict[str, PairedDifference], dict[str, PairedDifference]]:
        """(rung → estimate of its unsubscribes per impression, rung → estimate of its
        difference from ``baseline``'s), for :func:`bandits.compare.check_guardrail`."""
        own = {k: self._estimate(k, None, "cost", "cost") for k in self.labels}
        vs = {k: self._estimate(k, baseline, "cost", "cost") for k in self.labels if k != baseline}
        return own, vs

    def group_lifts(self, baseline: str, *, alpha: float = 0.05) -> pl.DataFrame:
        """Who gains: :func:`bandits.compare.replicated_group_lifts` over every group seen
        in any replication (a group a replication never saw has no rounds there)."""
        groups: dict[str, list[str]] = {}
        for rep in self.replications:
            for dim, names in rep.groups.items():
                groups[dim] = sorted(set(groups.get(dim, [])) | set(names))
        counts = {dim: np.zeros((self.n, len(names)), np.int64) for dim, names in groups.items()}
        values = {
            k: {dim: np.full((self.n, len(names)), np.nan) for dim, names in groups.items()}
            for k in self.labels
        }
        for i, rep in enumerate(self.replications):
            for dim, names in rep.groups.items():
                cols = [groups[dim].index(g) for g in names]
                n = rep.counts[dim]
                counts[dim][i, cols] = n
                safe = np.maximum(n, 1)
                for k in self.labels:
                    mean = rep.rungs[k].cells[dim] / safe
                    values[k][dim][i, cols] = np.where(n > 0, mean, np.nan)
        return replicated_group_lifts(groups, counts, values, baseline, alpha=alpha)

    def mean_curves(self, label: str) -> pl.DataFrame:
        """Rung ``label``'s curves averaged over the replications (same steps in each)."""
        first = self.replications[0].rungs[label].curves
        mean = {
            c: np.mean([r.rungs[label].curves[c] for r in self.replications], axis=0) for c in first
        }
        mean["step"] = first["step"].astype(np.int64)
        return pl.DataFrame(mean)

    def mean_summary(self, label: str) -> dict[str, float]:
        """Rung ``label``'s final metrics averaged over the replications."""
        keys = self.replications[0].rungs[label].summary
        return {
            k: float(np.mean([r.rungs[label].summary[k] for r in self.replications])) for k in keys
        }
