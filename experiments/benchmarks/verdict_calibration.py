"""Calibration of the simulated verdict against the simulator's exact truth.

``python -m experiments.benchmarks.verdict_calibration`` (options: ``--help``; ``--quick`` is
a smoke test) writes ``experiments/benchmarks/verdict_calibration_results.md``;
``python -m experiments.benchmarks --only verdict_calibration`` runs the quick version as
one benchmark row.

A *comparison* is exactly what ``python -m experiments.compare seed=S replications=R`` computes
(:func:`bandits.simulate.replications.run_replication` for indices ``0..R-1`` of root seed
``S``, then one Holm family over every pair of rungs). Comparison ``g`` of a part uses root
seed ``first_seed + g`` for the A/A part and ``first_seed + block + 1000·k + g`` for scenario
``k`` of the presets (block 10,000) and tiny (block 20,000) parts, so no two scenarios share
seeds (seeds from 1000 on by default: seeds nobody tuned the presets on). Three parts:

* ``aa`` — the same learning policy (LinUCB, VW, segment_ts, ab_winner) as two rungs with
  independent seeds on the default audience: the share of comparisons that claim better or
  worse (nominal: 5%), the share where some who-gains cell is flagged (Holm over every cell),
  and, on the same runs, the share one run's batch-means verdict (replication 0 of each
  comparison) claims — what the app answered before replications.
* ``presets`` — each scenario preset with its shipped ladder (``configs/compare.yaml`` with
  ``experiment=<preset>``). The *expected Δ* of a pair is the mean exact Δ over the other
  comparisons' replications (independent of the comparison scored). Reported: coverage of the
  expected Δ by the nominal 95% interval over replications, by the printed Holm-consistent
  interval, and by all intervals of a comparison at once; the number of better/worse verdicts
  and of those with the wrong sign; and the coverage of the same expected Δ by one run's
  95% batch-means interval.
* ``tiny`` — the same on campaigns of ``--tiny-rounds`` impressions (every preset and the
  default audience): wrong signs.

The expected Δ is itself a mean over ``(G - 1)·R`` replications; its standard error is about
``1/sqrt(G - 1)`` of one comparison's, which lowers the coverage a perfect 95% interval shows
by a few tenths of a percentage point at the default sizes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmarks.common import Row, git_commit, machine_info

RESULTS = Path(__file__).with_name("verdict_calibration_results.md")
AA_POLICIES = ("linucb", "vw", "segment_ts", "ab_winner")
CLAIMS = ("better", "worse")


@dataclass(frozen=True)
class Config:
    """What to run (see ``--help``)."""

    parts: tuple[str, ...] = ("aa", "presets", "tiny")
    aa_comparisons: int = 100
    aa_replications: int = 5
    aa_rounds: int = 20_000
    comparisons: int = 12
    replications: int = 20
    rounds: int = 20_000
    tiny_rounds: int = 500
    tiny_comparisons: int = 40
    tiny_replications: int = 5
    first_seed: int = 1000
    jobs: int = 2
    aa_policies: tuple[str, ...] = AA_POLICIES
    audience: tuple[str, ...] = ()  # extra audience overrides (quick: a small audience)
    drop: tuple[str, ...] = ()  # rungs left out of the presets' ladders (quick: vw)


QUICK = Config(
    aa_comparisons=4,
    aa_replications=3,
    aa_rounds=300,
    comparisons=3,
    replications=3,
    rounds=400,
    tiny_rounds=200,
    tiny_comparisons=3,
    tiny_replications=3,
    audience=("audience=small",),
    drop=("vw",),
)


def _compose(preset: str | None, cfg: Config) -> Any:
    from hydra import compose, initialize_config_dir

    from experiments.common import CONFIG_DIR

    overrides = [f"experiment={preset}"] if preset else []
    overrides += list(cfg.audience) + [f"~ladder.{r}" for r in cfg.drop]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("compare", overrides=overrides)


def _settings(app_cfg: Any) -> Any:
    from bandits.simulate import audience_settings_from_dict
    from experiments import common

    return audience_settings_from_dict(common.resolved_config(app_cfg.audience))


def _run_all(
    tasks: Sequence[tuple[Any, Mapping[str, Any], int, int, int]], jobs: int, what: str
) -> dict[tuple[int, int], Any]:
    """``run_replication(settings, policies, rounds, seed, index)`` for every task, in
    ``jobs`` worker processes; results keyed by ``(seed, index)``."""
    from joblib import Parallel, delayed

    from bandits.simulate.replications import run_replication

    out: dict[tuple[int, int], Any] = {}
    t0 = time.perf_counter()
    calls = (
        delayed(run_replication)(s, p, rounds, seed, i, eval_rounds=0)
        for s, p, rounds, seed, i in tasks
    )
    for rep, (_, _, _, seed, i) in zip(
        Parallel(n_jobs=jobs, return_as="generator")(calls), tasks, strict=True
    ):
        out[(seed, i)] = rep
        if len(out) % max(1, len(tasks) // 10) == 0:
            print(
                f"  {what}: {len(out)}/{len(tasks)} replications "
                f"({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return out


def _groups(done: Mapping[tuple[int, int], Any], seeds: Sequence[int], reps: int) -> list[Any]:
    from bandits.simulate.replications import ReplicatedLadder

    return [ReplicatedLadder(tuple(done[(s, i)] for i in range(reps))) for s in seeds]


def run_aa(cfg: Config) -> list[dict[str, Any]]:
    """The A/A part: one row per policy."""
    from bandits.compare import compare_family
    from bandits.policies import make_policy

    settings = _settings(_compose(None, cfg))
    rows = []
    for name in cfg.aa_policies:
        # ab_winner tests for the first tenth of the campaign, as the app's ladder does
        spec = {"test_rounds": max(1, cfg.aa_rounds // 10)} if name == "ab_winner" else {}
        rungs = {name: make_policy(name, spec), f"{name}_again": make_policy(name, spec)}
        seeds = [cfg.first_seed + g for g in range(cfg.aa_comparisons)]
        tasks = [
            (settings, rungs, cfg.aa_rounds, s, i)
            for s in seeds
            for i in range(cfg.aa_replications)
        ]
        t0 = time.perf_counter()
        done = _run_all(tasks, cfg.jobs, f"A/A {name}")
        seconds = time.perf_counter() - t0
        pair = [(f"{name}_again", name)]
        claims = one_run = cells = 0
        for over in _groups(done, seeds, cfg.aa_replications):
            (c,) = compare_family(over.evidence(pair), over.point_values())
            claims += c.verdict in CLAIMS
            first = type(over)(over.replications[:1])
            (c1,) = compare_family(first.evidence(pair), first.point_values())
            one_run += c1.verdict in CLAIMS
            table = over.group_lifts(name)
            cells += bool(table.filter(table["verdict"].is_in(list(CLAIMS))).height)
        n = len(seeds)
        rows.append(
            {
                "policy": name,
                "comparisons": n,
                "claims": claims,
                "one_run": one_run,
                "cells": cells,
                "seconds": seconds,
                "replications": len(tasks),
            }
        )
        print(
            f"A/A {name}: {claims}/{n} claims over replications, {one_run}/{n} from one run, "
            f"some cell in {cells}/{n}",
            file=sys.stderr,
        )
    return rows


def run_presets(cfg: Config, *, tiny: bool) -> list[dict[str, Any]]:
    """The presets part (or, with ``tiny``, the tiny-campaign part): one row per scenario."""
    from bandits.compare import compare_family, interval_at, ladder_pairs
    from experiments.compare import _ladder

    names: list[str | None] = list(_preset_names())
    if tiny:
        names = [None, *names]
    rounds = cfg.tiny_rounds if tiny else cfg.rounds
    groups = cfg.tiny_comparisons if tiny else cfg.comparisons
    reps = cfg.tiny_replications if tiny else cfg.replications
    block = 20_000 if tiny else 10_000
    rows = []
    for k, name in enumerate(names):
        app_cfg = _compose(name, cfg)
        settings, policies = _settings(app_cfg), _ladder(app_cfg)
        baseline = str(app_cfg.baseline)
        seeds = [cfg.first_seed + block + 1000 * k + g for g in range(groups)]
        tasks = [(settings, policies, rounds, s, i) for s in seeds for i in range(reps)]
        t0 = time.perf_counter()
        done = _run_all(tasks, cfg.jobs, f"{'tiny ' if tiny else ''}{name or 'default'}")
        seconds = time.perf_counter() - t0
        runs = _groups(done, seeds, reps)
        pairs = ladder_pairs(runs[0].labels, baseline)
        exact = {
            (a, b): np.array([r.per_replication(a) - r.per_replication(b) for r in runs])
            for a, b in pairs
        }  # (groups, reps)
        stats = {k: 0 for k in ("n", "nominal", "holm", "all", "verdicts", "wrong", "one_run")}
        truth_se = []
        for g, run in enumerate(runs):
            evidence = run.evidence(pairs)
            family = compare_family(evidence, run.point_values())
            first = type(run)(run.replications[:1]).evidence(pairs)
            every = True
            for c in family:
                key = (c.policy, c.baseline)
                others = np.delete(exact[key], g, axis=0).ravel()
                truth = float(others.mean())
                truth_se.append(float(others.std(ddof=1) / math.sqrt(others.size)))
                lo, hi = interval_at(evidence[key].diff, 0.95)
                stats["n"] += 1
                stats["nominal"] += lo <= truth <= hi
                held = c.ci_low <= truth <= c.ci_high
                stats["holm"] += held
                every &= held
                one = first[key].diff
                stats["one_run"] += one.ci_low <= truth <= one.ci_high
                if c.verdict in CLAIMS:
                    stats["verdicts"] += 1
                    stats["wrong"] += math.copysign(1, c.diff) != math.copysign(1, truth)
            stats["all"] += every
        rows.append(
            {
                "scenario": name or "default",
                "baseline": baseline,
                "rungs": len(runs[0].labels),
                "comparisons": groups,
                "pairs": len(pairs),
                "seconds": seconds,
                "replications": len(tasks),
                "truth_se": float(np.median(truth_se)),
                **stats,
            }
        )
        print(
            f"{'tiny ' if tiny else ''}{name or 'default'}: coverage {stats['nominal']}/"
            f"{stats['n']}, wrong signs {stats['wrong']}/{stats['verdicts']}",
            file=sys.stderr,
        )
    return rows


def _preset_names() -> list[str]:
    from experiments.common import CONFIG_DIR

    return sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.1%})" if n else "–"


def _binomial(k: int, n: int, level: float = 0.95) -> str:
    """``k/n`` with its exact (Clopper–Pearson) interval."""
    from scipy.stats import beta

    if not n:
        return "–"
    a = (1 - level) / 2
    low = float(beta.ppf(a, k, n - k + 1)) if k else 0.0
    high = float(beta.ppf(1 - a, k + 1, n - k)) if k < n else 1.0
    return f"{k}/{n} ({k / n:.1%}; {low:.1%}–{high:.1%})"


def report(cfg: Config, results: Mapping[str, list[dict[str, Any]]], command: str) -> str:
    """The results as markdown."""
    info = "\n".join(f"- {k}: {v}" for k, v in machine_info().items())
    parts = [
        "# Calibration of the simulated verdict\n",
        f"Command: `{command}` (commit {git_commit()}, {time.strftime('%Y-%m-%d %H:%M')})\n",
        f"Machine:\n{info}\n",
        "What is measured and how: the module docstring of "
        "`experiments/benchmarks/verdict_calibration.py`. A comparison is what "
        "`python -m experiments.compare seed=S replications=R` computes; root seeds from "
        f"{cfg.first_seed} on.\n",
    ]
    if "aa" in results:
        parts += [
            "## A/A: the same learning policy twice (independent seeds, default audience)\n",
            f"{cfg.aa_comparisons} comparisons per policy, {cfg.aa_replications} replications "
            f"of a {cfg.aa_rounds:,}-impression campaign each. Nominal false-claim rate 5% "
            "(target ≤ 7%); some who-gains cell flagged: target ≤ 5%. In brackets: the exact "
            "95% binomial interval of the rate.\n",
            "| policy | false claims over replications | some cell flagged | "
            "one run's batch means (replication 0) | replications | seconds |",
            "|---|---|---|---|---|---|",
        ]
        for r in results["aa"]:
            n = r["comparisons"]
            parts.append(
                f"| {r['policy']} | {_binomial(r['claims'], n)} | {_binomial(r['cells'], n)} | "
                f"{_pct(r['one_run'], n)} | {r['replications']} | {r['seconds']:.0f} |"
            )
        if len(results["aa"]) > 1:
            total = {k: sum(r[k] for r in results["aa"]) for k in ("claims", "cells", "one_run")}
            n = sum(r["comparisons"] for r in results["aa"])
            parts.append(
                f"| **all** | {_binomial(total['claims'], n)} | {_binomial(total['cells'], n)} | "
                f"{_pct(total['one_run'], n)} | | |"
            )
        parts.append("")
    for key, title, rounds, reps in (
        ("presets", "Presets as shipped", cfg.rounds, cfg.replications),
        ("tiny", "Tiny campaigns", cfg.tiny_rounds, cfg.tiny_replications),
    ):
        if key not in results:
            continue
        rows = results[key]
        groups = cfg.comparisons if key == "presets" else cfg.tiny_comparisons
        parts += [
            f"## {title}: {rounds:,}-impression campaigns, {reps} replications per "
            f"comparison, {groups} comparisons per scenario\n",
            "Every pair of rungs of each comparison against its expected Δ (the mean exact Δ "
            "of the other comparisons' replications; median standard error of that truth in "
            "the last column). Coverage target of the nominal 95% interval: 93–97%; wrong "
            "signs: 0.\n",
            "| scenario | baseline | pairs | 95% interval covers | Holm-consistent interval "
            "covers | all pairs of a comparison covered | better/worse verdicts | wrong sign | "
            "one run's 95% batch-means interval covers | truth's se |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        total = {k: 0 for k in ("n", "nominal", "holm", "all", "verdicts", "wrong", "one_run")}
        for r in rows:
            for k in total:
                total[k] += r[k]
            parts.append(
                f"| {r['scenario']} | {r['baseline']} | {r['pairs']} | "
                f"{_pct(r['nominal'], r['n'])} | {_pct(r['holm'], r['n'])} | "
                f"{_pct(r['all'], r['comparisons'])} | {r['verdicts']} | {r['wrong']} | "
                f"{_pct(r['one_run'], r['n'])} | {r['truth_se']:.4f} |"
            )
        comparisons = sum(r["comparisons"] for r in rows)
        parts.append(
            f"| **all** | | | {_pct(total['nominal'], total['n'])} | "
            f"{_pct(total['holm'], total['n'])} | {_pct(total['all'], comparisons)} | "
            f"{total['verdicts']} | {total['wrong']} | {_pct(total['one_run'], total['n'])} | |"
        )
        parts.append("")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.verdict_calibration")
    d = Config()
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--parts", default=",".join(d.parts), help="aa,presets,tiny")
    parser.add_argument("--aa-comparisons", type=int, default=d.aa_comparisons)
    parser.add_argument("--aa-replications", type=int, default=d.aa_replications)
    parser.add_argument("--aa-rounds", type=int, default=d.aa_rounds)
    parser.add_argument("--comparisons", type=int, default=d.comparisons)
    parser.add_argument("--replications", type=int, default=d.replications)
    parser.add_argument("--rounds", type=int, default=d.rounds)
    parser.add_argument("--tiny-rounds", type=int, default=d.tiny_rounds)
    parser.add_argument("--tiny-comparisons", type=int, default=d.tiny_comparisons)
    parser.add_argument("--tiny-replications", type=int, default=d.tiny_replications)
    parser.add_argument("--first-seed", type=int, default=d.first_seed)
    parser.add_argument("--jobs", type=int, default=d.jobs)
    parser.add_argument("--aa-policies", default=",".join(d.aa_policies))
    parser.add_argument("--out", help=f"markdown output (default: {RESULTS.name} unless --quick)")
    parser.add_argument("--append", action="store_true", help="append to the output file")
    args = parser.parse_args(argv)
    parts = tuple(p for p in args.parts.split(",") if p)
    unknown = sorted(set(parts) - set(d.parts))
    if unknown:
        print(f"error: unknown part(s) {unknown}; known: {', '.join(d.parts)}", file=sys.stderr)
        return 2
    if max(args.comparisons, args.tiny_comparisons) > 1000:
        print("error: at most 1000 comparisons per scenario (seed blocks)", file=sys.stderr)
        return 2
    if args.quick:
        cfg = Config(**{**QUICK.__dict__, "parts": parts, "jobs": args.jobs})
    else:
        cfg = Config(
            parts=parts,
            aa_comparisons=args.aa_comparisons,
            aa_replications=args.aa_replications,
            aa_rounds=args.aa_rounds,
            comparisons=args.comparisons,
            replications=args.replications,
            rounds=args.rounds,
            tiny_rounds=args.tiny_rounds,
            tiny_comparisons=args.tiny_comparisons,
            tiny_replications=args.tiny_replications,
            first_seed=args.first_seed,
            jobs=args.jobs,
            aa_policies=tuple(p for p in args.aa_policies.split(",") if p),
        )
    results = calibrate(cfg)
    command = "python -m experiments.benchmarks.verdict_calibration " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = report(cfg, results, command.strip())
    print(text)
    out = args.out or (None if args.quick else RESULTS)
    if out:
        if args.append and Path(out).exists():
            text = Path(out).read_text() + "\n---\n\n" + text
        Path(out).write_text(text)
        print(f"(written to {out})", file=sys.stderr)
    return 0


def calibrate(cfg: Config) -> dict[str, list[dict[str, Any]]]:
    """Run the configured parts."""
    results: dict[str, list[dict[str, Any]]] = {}
    if "aa" in cfg.parts:
        results["aa"] = run_aa(cfg)
    if "presets" in cfg.parts:
        results["presets"] = run_presets(cfg, tiny=False)
    if "tiny" in cfg.parts:
        results["tiny"] = run_presets(cfg, tiny=True)
    return results


def bench_verdict_calibration(quick: bool) -> list[Row]:
    """One row for ``python -m experiments.benchmarks``: the quick calibration (the full one
    is this module's own command)."""
    t0 = time.perf_counter()
    results = calibrate(QUICK if quick else Config())
    seconds = time.perf_counter() - t0
    reps = sum(r["replications"] for rows in results.values() for r in rows)
    aa = results.get("aa", [])
    claims = sum(r["claims"] for r in aa)
    n = sum(r["comparisons"] for r in aa)
    presets = results.get("presets", [])
    covered = sum(r["nominal"] for r in presets)
    pairs = sum(r["n"] for r in presets)
    wrong = sum(r["wrong"] for rows in results.values() for r in rows if "wrong" in r)
    return [
        Row(
            "verdict calibration (replications)",
            reps,
            seconds,
            unit="replications",
            notes=(
                f"A/A false claims {claims}/{n}; coverage {covered}/{pairs}; wrong signs {wrong}"
            ),
            extra={"aa_claims": claims, "aa_n": n, "covered": covered, "pairs": pairs},
        )
    ]


if __name__ == "__main__":
    sys.exit(main())
