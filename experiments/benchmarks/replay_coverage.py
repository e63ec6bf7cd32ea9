"""Coverage of the replay interval: does it hold the policy's online value?

``python -m experiments.benchmarks.replay_coverage --runs 200 --seed 2026`` prints a table
and writes ``experiments/benchmarks/replay_coverage_results.md`` (``--out``; ``--quick`` is a
smoke test that writes nothing unless ``--out`` is given).

Each run (seed ``SeedSequence([--seed, run])``) draws its own world — a synthetic audience
with the default settings but stationary (no fatigue, no unsubscribes, no creepiness cost:
replay cannot see what a policy's own choices do to the audience, see
:mod:`bandits.offline.replay`) — and:

1. **Log**: ``--days`` days of ``--per-day`` impressions chosen uniformly at random (12
   variants), with the simulator's ``day`` column; contexts are day-clustered (a day's
   weather, weekday and browsing state are shared by its impressions).
2. **Replay** of each policy in ``--policies`` (default ``linucb``, ``segment_ts`` — both
   learn — and the fixed ``retargeting`` rule) through the log with
   :func:`bandits.offline.replay.replay`; ``N`` events are accepted.
3. **Truth** ``V_N`` (the replay's estimand): the policy's expected reward per round over
   ``N`` online rounds, in the same world (same catalog, response model and users) on days
   drawn independently of the log's, with ``round(per_day · c)`` impressions a day (the
   accepted events' pace; ``c = 1/K``). It is the average of ``--truth-runs`` online runs,
   each on its own days and with its own policy seed, of the exact expected reward of the
   chosen variants (so reward noise does not enter it); its standard error is reported.

Per policy and interval it reports coverage of ``V_N`` (with a Wilson 95% interval of the
coverage itself), the mean width, the mean replay error ``value − V_N`` (bias check) and the
**se ratio**: mean standard error over the actual spread of the errors, ``sd(value − V_N)``
with the truth's own noise taken out (1 = an interval of the right size; the i.i.d. one's
below 1 is why it undercovers). Intervals, all on the same replays:

* ``iid`` — the interval replay gave before (mean ± 1.96·sd/√N: accepted events treated as
  independent),
* ``day-clustered`` — the default now (``clusters="auto"`` on a log with a ``day`` column),
* ``blocks`` — 20 contiguous blocks of accepted events, what ``auto`` falls back to on a log
  without day or date column.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.benchmarks.common import git_commit, machine_info

RESULTS = Path(__file__).with_name("replay_coverage_results.md")
POLICIES: tuple[str, ...] = ("linucb", "segment_ts", "retargeting")
INTERVALS: tuple[str, ...] = ("iid", "day-clustered", "blocks")


@dataclasses.dataclass(frozen=True)
class Setup:
    """One benchmark configuration (the defaults are the reported one)."""

    days: int = 14
    per_day: int = 2_400
    n_users: int = 20_000
    truth_runs: int = 10
    policies: tuple[str, ...] = POLICIES
    level: float = 0.95


class _Streams(np.random.SeedSequence):
    """A seed whose ``spawn`` hands out given child seeds: an
    :class:`~bandits.simulate.Environment` built from it takes its world, users, days and
    user keys from them, so several environments can share a world and differ in days."""

    def __init__(self, children: Sequence[np.random.SeedSequence]) -> None:
        super().__init__(0)
        self._children = list(children)

    def spawn(self, n_children: int) -> list[np.random.SeedSequence]:  # type: ignore[override]
        return self._children[:n_children]


def _settings(setup: Setup, per_day: int):
    from bandits.simulate import AudienceSettings
    from bandits.simulate.knobs import ResponseKnobs

    stationary = ResponseKnobs(
        fatigue_weight=0.0, unsubscribe_base_logit=-30.0, creepiness_weight=0.0
    )
    return AudienceSettings(n_users=setup.n_users, impressions_per_day=per_day, response=stationary)


def _truth_days(setup: Setup, world, days_ss, per_day: int, rounds: int):
    """``(contexts, potential rewards, expected rewards)`` of days drawn in ``world`` with
    their own day stream until ``rounds`` impressions; decisions do not change the stationary
    audience, so each day is committed with action 0."""
    from bandits.simulate import Environment, problem_spec

    world_ss, pop_ss, key_ss = world
    env = Environment(_settings(setup, per_day), _Streams([world_ss, pop_ss, days_ss, key_ss]))
    spec = problem_spec(env)
    out, done = [], 0
    while done < rounds:
        day = env.next_day(per_day)
        out.append((spec.contexts(day.frame), day.potential_reward, day.truth.expected_reward))
        env.commit(day, np.zeros(len(day.frame), np.int64))
        done += len(day.frame)
    return spec, out


def _online_value(name: str, spec, days, rounds: int, seed) -> float:
    """Mean exact expected reward of ``name``'s choices over its first ``rounds`` online
    rounds on ``days`` (learning as it goes, like :func:`bandits.simulate.run_online`)."""
    from bandits.policies import make_policy

    policy = make_policy(name).reset(spec, seed)
    total, done = 0.0, 0
    for ctx, potential, expected in days:
        take = min(len(ctx), rounds - done)
        if take <= 0:
            break
        dec = policy.play(ctx.slice(0, take), potential[:take])
        total += float(expected[np.arange(take), dec.actions].sum())
        done += take
    return total / done


def one_run(setup: Setup, seed: int, run: int) -> list[dict]:
    """One world: a uniform log, each policy replayed through it, and its truth ``V_N``.
    Returns one record per policy (value, N, the intervals' (se, crit, n_clusters), truth
    and its standard error)."""
    from bandits.data import load_log
    from bandits.offline.replay import cluster_interval, replay
    from bandits.policies import make_policy
    from bandits.simulate import Environment, default_feature_schema, run_online

    root = np.random.SeedSequence([seed, run])
    world_ss, pop_ss, log_days_ss, key_ss, log_ss, replay_ss, truth_ss = root.spawn(7)
    world = (world_ss, pop_ss, key_ss)
    env = Environment(
        _settings(setup, setup.per_day), _Streams([world_ss, pop_ss, log_days_ss, key_ss])
    )
    log = run_online(env, make_policy("uniform"), setup.days * setup.per_day, log_ss, eval_rounds=0)
    data = load_log(log.log, catalog=env.catalog.to_frame(), features=default_feature_schema())
    spec = data.problem_spec()
    ctx = spec.contexts(data.frame)
    results = {}
    for name, ss in zip(setup.policies, replay_ss.spawn(len(setup.policies)), strict=True):
        p_ss, u_ss = ss.spawn(2)
        results[name] = replay(
            data, make_policy(name).reset(spec, p_ss), seed=u_ss, ctx=ctx, level=setup.level
        )
    c = float(data.propensity.min())
    per_day = max(1, round(setup.per_day * c))
    need = max(r.n_accepted for r in results.values())
    truth: dict[str, list[float]] = {name: [] for name in setup.policies}
    for t_ss in truth_ss.spawn(setup.truth_runs):
        d_ss, pol_ss = t_ss.spawn(2)
        t_spec, days = _truth_days(setup, world, d_ss, per_day, need)
        for name, p_ss in zip(setup.policies, pol_ss.spawn(len(setup.policies)), strict=True):
            truth[name].append(_online_value(name, t_spec, days, results[name].n_accepted, p_ss))
    z = _normal_quantile(0.5 + setup.level / 2)
    records = []
    for name, res in results.items():
        y = res.rewards
        n = res.n_accepted
        blocks = cluster_interval(y, (np.arange(n) * min(20, n // 10)) // n, setup.level)
        vals = np.asarray(truth[name])
        records.append(
            {
                "run": run,
                "policy": name,
                "value": res.value,
                "n_accepted": n,
                "iid": (float(y.std(ddof=1) / math.sqrt(n)), z, n),
                "day-clustered": (
                    res.stderr,
                    (res.ci_high - res.value) / res.stderr,
                    res.n_clusters,
                ),
                "blocks": blocks,
                "label": res.interval,
                "truth": float(vals.mean()),
                "truth_se": float(vals.std(ddof=1) / math.sqrt(vals.size))
                if vals.size > 1
                else 0.0,
            }
        )
    return records


def _normal_quantile(q: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(q))


def run_benchmark(setup: Setup, runs: int, seed: int, progress: bool = False) -> list[dict]:
    """Records of :func:`one_run` for runs ``0 .. runs-1``."""
    records: list[dict] = []
    t0 = time.perf_counter()
    for run in range(runs):
        records.extend(one_run(setup, seed, run))
        if progress and (run + 1) % 10 == 0:
            print(f"  {run + 1}/{runs} runs, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return records


def summarise(records: list[dict], level: float = 0.95) -> list[dict]:
    """One row per policy × interval: ``coverage``, its Wilson interval ``cov_low``,
    ``cov_high``, ``width`` (mean), ``se_ratio`` (mean se over the truth-noise-corrected
    sd of the errors), ``bias`` and its standard error, ``n_accepted`` and ``clusters``
    (means), ``truth_se`` (mean standard error of the truth) and ``runs``."""
    rows = []
    for name in dict.fromkeys(r["policy"] for r in records):
        recs = [r for r in records if r["policy"] == name]
        err = np.array([r["value"] - r["truth"] for r in recs])
        tse = np.array([r["truth_se"] for r in recs])
        var = float(err.var(ddof=1) - np.mean(tse**2)) if err.size > 1 else math.nan
        spread = math.sqrt(var) if var > 0 else math.nan  # nan: the truth's noise dominates
        for kind in INTERVALS:
            se = np.array([r[kind][0] for r in recs])
            half = se * np.array([r[kind][1] for r in recs])
            hits = int(np.sum(np.abs(err) <= half))
            lo, hi = _wilson(hits, len(recs))
            rows.append(
                {
                    "policy": name,
                    "interval": kind,
                    "runs": len(recs),
                    "coverage": hits / len(recs),
                    "cov_low": lo,
                    "cov_high": hi,
                    "width": float(np.mean(2 * half)),
                    "se_ratio": float(np.mean(se) / spread),
                    "bias": float(err.mean()),
                    "bias_se": float(err.std(ddof=1) / math.sqrt(err.size)),
                    "n_accepted": float(np.mean([r["n_accepted"] for r in recs])),
                    "clusters": float(np.mean([r[kind][2] for r in recs])),
                    "truth_se": float(tse.mean()),
                }
            )
    return rows


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def table(rows: list[dict]) -> str:
    head = (
        "| policy | interval | runs | coverage of V_N (Wilson 95%) | mean width | se ratio | "
        "mean error ± se | mean N | clusters |\n|---|---|---:|---|---:|---:|---|---:|---:|\n"
    )
    lines = [
        f"| {r['policy']} | {r['interval']} | {r['runs']} | {r['coverage']:.1%} "
        f"({r['cov_low']:.1%}–{r['cov_high']:.1%}) | {r['width']:.4f} | {_ratio(r['se_ratio'])} | "
        f"{r['bias']:+.4f} ± {r['bias_se']:.4f} | {r['n_accepted']:.0f} | {r['clusters']:.0f} |"
        for r in rows
    ]
    return head + "\n".join(lines)


def _ratio(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "—"


def report(rows: list[dict], setup: Setup, command: str, seconds: float, label: str) -> str:
    machine = "; ".join(f"{k}: {v}" for k, v in machine_info().items() if k in ("cpu", "cpus"))
    truth_se = max(r["truth_se"] for r in rows)
    return (
        "# Replay interval coverage\n\n"
        f"Command: `{command}` (commit {git_commit()}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{seconds:.0f} s; {machine})\n\n"
        f"Setup: {setup.days} days × {setup.per_day:,} uniformly logged impressions per world "
        f"(12 variants, {setup.n_users:,} users, stationary audience), one world per run; the "
        f"truth V_N is the mean of {setup.truth_runs} online runs of N rounds in the same "
        f"world on independent days (its standard error, at most {truth_se:.4f} here, is "
        "taken out of the se ratio). See the module docstring of "
        "`experiments/benchmarks/replay_coverage.py` for the estimand and the intervals.\n\n"
        f"The interval replay now prints, e.g.: *{label}*.\n\n"
        + table(rows)
        + "\n\n"
        + _before_after(rows)
    )


def _before_after(rows: list[dict]) -> str:
    """The headline: coverage of the former (i.i.d.) and the new (day-clustered) interval."""

    def span(kind: str) -> str:
        got = [r for r in rows if r["interval"] == kind]
        return ", ".join(
            f"{r['policy']} {r['coverage']:.1%} (se ratio {_ratio(r['se_ratio'])})" for r in got
        )

    return (
        "**Before** (the i.i.d. interval replay used to print, same replays): "
        f"{span('iid')}.\n\n**After** (the day-clustered t interval, the default now): "
        f"{span('day-clustered')}.\n\n"
        "Reading: an se ratio below 1 is an interval too narrow for the replay's real error "
        "(the i.i.d. one leaves out day-to-day variation and the learning path's dependence); "
        "above 1, a conservative one. The day-clustered interval runs large where the "
        "between-day spread holds more than sampling noise: a learning curve that climbs over "
        "the days (LinUCB) and, for every policy, the weekday effect — a 14-day log has each "
        "weekday twice, as does the online run, so it is fixed by the calendar, yet the "
        "cluster variance counts it. The `blocks` row is what a log without a day or date "
        "column gets. `segment_ts` is the quadrature version; its Monte-Carlo predecessor "
        "was not replayed here.\n\n" + ALTERNATIVES
    )


#: Other intervals measured while choosing this one (development seeds, not the run above).
ALTERNATIVES = (
    "Alternatives measured while choosing (development seeds 555 and 999, 80–120 worlds, "
    "not the seeds above): day clusters on residuals from a fitted learning curve "
    "(intercept + log-index slope, t on G − 2 df) take the trend out — LinUCB 94–97% — but "
    "also the slow part of the learning path, and undercover segment_ts (86–87%); adding "
    "the path's variance measured by re-running the replay with 8 independent acceptance "
    "draws (less the subsampling noise already counted) gave LinUCB 96%, segment_ts 92.5% "
    "at 9× the replay's cost and with a heuristic correction, so the plain day-clustered "
    "interval (conservative, never undercovering here) is the default.\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.replay_coverage",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("--runs", type=int, default=200, help="independent worlds (seeds)")
    parser.add_argument("--seed", type=int, default=2026, help="root seed of the runs")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--days", type=int, default=Setup.days)
    parser.add_argument("--per-day", type=int, default=Setup.per_day)
    parser.add_argument("--users", type=int, default=Setup.n_users)
    parser.add_argument("--truth-runs", type=int, default=Setup.truth_runs)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 4 small runs")
    parser.add_argument("--out", type=Path, default=None, help=f"markdown (default {RESULTS})")
    args = parser.parse_args(argv)
    setup = Setup(
        days=args.days,
        per_day=args.per_day,
        n_users=args.users,
        truth_runs=args.truth_runs,
        policies=tuple(args.policies),
    )
    runs = args.runs
    if args.quick:
        setup = dataclasses.replace(setup, days=5, per_day=600, n_users=2_000, truth_runs=2)
        runs = 4
    t0 = time.perf_counter()
    records = run_benchmark(setup, runs, args.seed, progress=True)
    seconds = time.perf_counter() - t0
    rows = summarise(records, setup.level)
    command = "python -m experiments.benchmarks.replay_coverage " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = report(rows, setup, command.strip(), seconds, records[0]["label"])
    print(text)
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        Path(out).write_text(text)
        print(f"(written to {out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
