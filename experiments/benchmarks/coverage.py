"""Coverage of the off-policy estimators' intervals on logs that look like real ones.

``python -m experiments.benchmarks.coverage`` (options: ``--help``; ``--quick`` is a smoke
test) writes ``experiments/benchmarks/coverage_results.md``; ``python -m experiments.benchmarks
--only coverage`` runs the default configuration as one benchmark row.

For each scenario of :mod:`bandits.simulate.scenarios` (default ``uniform``,
``epsilon_greedy``, ``rare_clicks``, and ``epsilon_greedy+estimated``: the same logs with
their propensities dropped and estimated from the log) it draws ``--logs`` independent logs
of ``--rows`` rows (seeds ``--first-seed`` onwards: 1000..1199 by default, seeds nobody
tuned on) and, on each log, evaluates three fixed target policies with every estimator in
:data:`bandits.ope.ESTIMATORS` (the reward model:
:func:`bandits.offline.evaluate.fit_reward_model`, ``--model`` / ``--folds``, fitted once
per log; by default the apps' own: ``auto``, 5 folds). The targets:

* ``popular`` -- ``fixed`` on the variant the scenario's logger uses most,
* ``rare`` -- ``fixed`` on a variant the logger seldom uses (the 1/8 quantile of the logging
  shares: rare, not never),
* ``retargeting`` -- the context-dependent retargeting rule.

The variants are chosen once per scenario on a pilot log (seed 0, 10,000 rows; the uniform
scenario logs every variant alike and takes the epsilon_greedy choice, on the same catalog).
Each log's exact target value is ``mean_i sum_k pi[i, k] q*[i, k]`` from the simulator's truth.

Per scenario x target x estimator it reports the coverage of the true value, the mean interval
width, the share of zero-width and of infinite intervals, and the width ratio: mean width over
``2 z sd``, the width of a CLT interval at the estimator's true standard deviation, measured
as the standard deviation across the independent logs of its error (estimate minus that log's
true value; every seed is a different world, so the spread of the raw estimates would also
count the spread of the true values). A ratio near 1 with coverage near 95 % is a well-sized
interval; below 1 with low coverage, an interval that is too narrow. Also: the mean ``ess``
and ``unsupported_target_mass`` diagnostics and, when estimates carry one (an ``evidence``
attribute or diagnostic), the share of each evidence level.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from experiments.benchmarks.common import Row, git_commit, machine_info

RESULTS = Path(__file__).with_name("coverage_results.md")
DEFAULT_SCENARIOS: tuple[str, ...] = (
    "uniform",
    "epsilon_greedy",
    "rare_clicks",
    "epsilon_greedy+estimated",
)
FIRST_SEED = 1000
PILOT_SEED = 0
PILOT_ROWS = 10_000
LEVEL = 0.95
#: A correct 95 % interval falls below this share of covered logs with probability ≤ 0.1 %.
FLAG_TAIL = 0.001
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclasses.dataclass(frozen=True)
class CoverageConfig:
    """What to run: scenarios, logs per scenario, rows per log, estimators, reward model."""

    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    n_logs: int = 200
    n_rows: int = 10_000
    first_seed: int = FIRST_SEED
    estimators: tuple[str, ...] | None = None  # None: every registered estimator
    model: str = "auto"
    folds: int = 5
    jobs: int = 2

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.n_logs)

    def estimator_names(self) -> tuple[str, ...]:
        """The estimators' registry names (all registered ones by default)."""
        if self.estimators is not None:
            return tuple(self.estimators)
        from bandits.ope import ESTIMATORS

        return tuple(ESTIMATORS)


@dataclasses.dataclass(frozen=True)
class Target:
    """A fixed target policy: registry name and settings; ``note`` says what it is."""

    label: str
    policy: str
    settings: tuple[tuple[str, Any], ...] = ()
    note: str = ""

    def probs(self, data: Any, ctx: Any) -> np.ndarray:
        """The target's probabilities ``(n, K)`` on the log's contexts."""
        from bandits.policies import make_policy

        policy = make_policy(self.policy, dict(self.settings)).reset(data.problem_spec(), 0)
        return policy.action_probs(ctx)


@dataclasses.dataclass(frozen=True)
class Record:
    """One estimate on one log."""

    scenario: str
    target: str
    estimator: str
    seed: int
    value: float
    ci_low: float
    ci_high: float
    truth: float
    ess: float
    unsupported: float
    evidence: str | None


# --------------------------------------------------------------------------- targets
ESTIMATED = "+estimated"
"""Scenario suffix: drop the log's propensities and estimate them from the log itself
(:func:`bandits.data.load.with_estimated_propensities`), as for a log without them."""


def base_scenario(scenario: str) -> str:
    """The simulated scenario behind a name, without the :data:`ESTIMATED` suffix."""
    return scenario.removesuffix(ESTIMATED)


def scenario_targets(scenario: str) -> list[Target]:
    """The three targets of ``scenario``, chosen on its pilot log (see the module doc)."""
    from bandits.simulate.scenarios import make_scenario

    scenario = base_scenario(scenario)
    source = "epsilon_greedy" if scenario == "uniform" else scenario
    pilot = make_scenario(source, PILOT_ROWS, PILOT_SEED)
    share = pilot.logging_share
    ids = pilot.data.action_ids
    order = np.argsort(share, kind="stable")
    popular, rare = int(order[-1]), int(order[len(ids) // 8])
    where = f" in the {source} pilot" if source != scenario else ""
    return [
        Target(
            "popular",
            "fixed",
            (("variant", ids[popular]),),
            f"fixed `{ids[popular]}` (logging share {share[popular]:.3g}{where})",
        ),
        Target(
            "rare",
            "fixed",
            (("variant", ids[rare]),),
            f"fixed `{ids[rare]}` (logging share {share[rare]:.3g}{where})",
        ),
        Target("retargeting", "retargeting", (), "the retargeting rule (context-dependent)"),
    ]


# --------------------------------------------------------------------------- one log
def _evidence(est: Any) -> str | None:
    ev = getattr(est, "evidence", None)
    if ev is None:
        ev = est.diagnostics.get("evidence")
    if ev is None:
        return None
    return str(getattr(ev, "value", ev))


def evaluate_log(
    scenario: str,
    seed: int,
    n_rows: int,
    targets: Sequence[Target],
    estimators: Sequence[str],
    model: str,
    folds: int,
) -> list[Record]:
    """Every estimator on every target on the log of ``scenario`` drawn with ``seed``."""
    from bandits.offline.evaluate import contexts_of, fit_reward_model, true_q
    from bandits.ope import ESTIMATORS, estimate_many
    from bandits.simulate.scenarios import make_scenario

    data = make_scenario(base_scenario(scenario), n_rows, seed).data
    estimated = scenario.endswith(ESTIMATED)
    if estimated:
        from bandits.data.load import with_estimated_propensities

        data = with_estimated_propensities(data, seed=seed)
    ctx = contexts_of(data)
    q_star = true_q(data)
    assert q_star is not None  # simulated logs carry the truth
    ests = [ESTIMATORS[name]() for name in estimators]
    needs_q = any(type(e).requires_reward_hat for e in ests)
    q = fit_reward_model(data, ctx.X, model, folds=folds, seed=seed) if needs_q else None
    out: list[Record] = []
    for target in targets:
        pi = target.probs(data, ctx)
        truth = float((pi * q_star).sum(axis=1).mean())
        results = estimate_many(
            ests,
            reward=data.reward,
            action=data.action,
            propensity=data.propensity,
            target_probs=pi,
            reward_hat=q,
            logging_probs=data.logging_probs,
            check_propensities=not estimated,
        )
        for name, est in zip(estimators, results, strict=True):
            diag = est.diagnostics
            out.append(
                Record(
                    scenario,
                    target.label,
                    name,
                    int(seed),
                    float(est.value),
                    float(est.ci_low),
                    float(est.ci_high),
                    truth,
                    float(diag.get("ess", math.nan)),
                    float(diag.get("unsupported_target_mass", math.nan)),
                    _evidence(est),
                )
            )
    return out


def _chunk(
    scenario: str,
    seeds: Sequence[int],
    n_rows: int,
    targets: Sequence[Target],
    estimators: Sequence[str],
    model: str,
    folds: int,
) -> list[Record]:
    """Worker task: several logs of one scenario, BLAS limited to one thread (the work is
    spread over processes)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with the dev tools
        limits = None
    else:
        limits = threadpool_limits(1)
    try:
        return [
            r
            for seed in seeds
            for r in evaluate_log(scenario, seed, n_rows, targets, estimators, model, folds)
        ]
    finally:
        if limits is not None:
            limits.unregister()


def run_coverage(config: CoverageConfig) -> tuple[pl.DataFrame, dict[str, list[Target]]]:
    """Every log of every scenario; returns the per-estimate records and the targets."""
    estimators = config.estimator_names()
    targets = {s: scenario_targets(s) for s in config.scenarios}
    seeds = list(config.seeds)
    size = max(1, math.ceil(len(seeds) / (4 * max(1, config.jobs))))
    tasks = [
        (s, seeds[i : i + size], config.n_rows, targets[s], estimators, config.model, config.folds)
        for s in config.scenarios
        for i in range(0, len(seeds), size)
    ]
    if config.jobs <= 1:
        parts = [_chunk(*t) for t in tasks]
    else:
        from joblib import Parallel, delayed

        for var in _THREAD_VARS:  # the workers inherit these: one BLAS thread each
            os.environ.setdefault(var, "1")
        parts = Parallel(n_jobs=config.jobs, backend="loky")(delayed(_chunk)(*t) for t in tasks)
    rows = [dataclasses.asdict(r) for part in parts for r in part]
    schema = {
        "scenario": pl.String,
        "target": pl.String,
        "estimator": pl.String,
        "seed": pl.Int64,
        "value": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "truth": pl.Float64,
        "ess": pl.Float64,
        "unsupported": pl.Float64,
        "evidence": pl.String,
    }
    return pl.DataFrame(rows, schema=schema), targets


# --------------------------------------------------------------------------- summary
def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``."""
    if k < 0:
        return 0.0
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(min(k, n) + 1)))


@functools.lru_cache(maxsize=64)
def min_covered(n: int, level: float = LEVEL, tail: float = FLAG_TAIL) -> int:
    """The fewest covered logs out of ``n`` that a correct ``level`` interval reaches with
    probability ≥ ``1 - tail``: the largest ``k`` with ``P(X < k) <= tail``."""
    k = 0
    while k < n and binomial_cdf(k, n, level) <= tail:
        k += 1
    return k


def summarize(records: pl.DataFrame, level: float = LEVEL) -> pl.DataFrame:
    """One row per scenario x target x estimator (in the records' order of appearance)."""
    z = _z(level)
    keys = ["scenario", "target", "estimator"]
    width = pl.col("ci_high") - pl.col("ci_low")
    err = pl.col("value") - pl.col("truth")
    finite = width.is_finite()
    out = (
        records.with_columns(width.alias("width"))
        .group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("logs"),
            pl.col("truth").mean().alias("truth_mean"),
            ((pl.col("ci_low") <= pl.col("truth")) & (pl.col("truth") <= pl.col("ci_high")))
            .mean()
            .alias("coverage"),
            pl.col("width").filter(finite).mean().alias("mean_width"),
            (~finite).mean().alias("inf_share"),
            (pl.col("width") == 0).mean().alias("zero_share"),
            err.mean().alias("bias"),
            err.std(ddof=1).alias("sd_err"),
            pl.col("value").std(ddof=1).alias("sd_est"),
            pl.col("ess").mean().alias("ess"),
            pl.col("unsupported").mean().alias("unsupported"),
            pl.col("evidence").alias("evidence_levels"),
        )
        .with_columns(
            (pl.col("mean_width") / (2 * z * pl.col("sd_err"))).alias("width_ratio"),
            (pl.col("mean_width") / (2 * z * pl.col("sd_est"))).alias("width_ratio_raw_sd"),
            pl.col("evidence_levels")
            .map_elements(_evidence_shares, return_dtype=pl.String)
            .alias("evidence"),
        )
        .drop("evidence_levels")
    )
    return out


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def _evidence_shares(levels: pl.Series) -> str:
    seen = [v for v in levels.to_list() if v is not None]
    if not seen:
        return "—"
    counts = Counter(seen)
    n = len(levels)
    return ", ".join(f"{k} {c / n:.0%}" for k, c in sorted(counts.items()))


# --------------------------------------------------------------------------- report
def _f(x: float | None, fmt: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return format(x, fmt)


def _share(x: float) -> str:
    return "0" if x == 0 else f"{x:.0%}" if x >= 0.01 else f"{x:.1%}"


def _coverage_cell(row: dict[str, Any]) -> str:
    text = f"{row['coverage']:.3f}"
    covered = round(row["coverage"] * row["logs"])
    return f"**{text}**" if covered < min_covered(int(row["logs"])) else text


def report(
    summary: pl.DataFrame,
    targets: dict[str, list[Target]],
    config: CoverageConfig,
    seconds: float,
    command: str,
    code: str,
) -> str:
    """The markdown report: set-up, three overview grids and the full table."""
    from bandits.simulate.scenarios import make_scenario

    rows = summary.to_dicts()
    n_logs = config.n_logs
    lines = [
        "# Interval coverage of the off-policy estimators",
        "",
        f"Command: `{command}` (code: {code}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{seconds:.0f} s wall on {config.jobs} process(es))",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine_info().items()),
        "",
        f"{n_logs} independent logs of {config.n_rows:,} rows per scenario (seeds "
        f"{config.first_seed}..{config.first_seed + n_logs - 1}), nominal level {LEVEL:.0%}, "
        f"reward model `{config.model}` "
        + (f"cross-fitted on {config.folds} folds" if config.folds >= 2 else "fitted in-sample")
        + ". Width ratio = mean interval width / (2 z sd), sd = standard deviation across "
        "logs of the estimate's error (estimate − that log's true value): 1 is the width of "
        "a correct CLT interval. **Bold** coverage: below "
        f"{min_covered(n_logs)}/{n_logs} logs, which a correct {LEVEL:.0%} interval "
        f"reaches with probability ≥ {1 - FLAG_TAIL:.1%}. Zero-width: `ci_high - ci_low == "
        "0`; ∞: infinite interval (left out of the mean width).",
        "",
        "## Scenarios and targets",
        "",
        "| scenario | logger | pilot log (seed 0) | targets |",
        "|---|---|---|---|",
    ]
    for s in config.scenarios:
        pilot = make_scenario(base_scenario(s), PILOT_ROWS, PILOT_SEED)
        d = pilot.describe()
        shape = (
            f"{d['variants']} variants, click rate {d['click_rate']:.2%} (expected "
            f"{d['expected_click_rate']:.2%}), propensity {d['propensity_min']:.3g}–"
            f"{d['propensity_max']:.3g}"
        )
        tg = "; ".join(f"{t.label}: {t.note}" for t in targets[s])
        lines.append(f"| {s} | {pilot.logger} | {shape} | {tg} |")
    columns = [f"{s} / {t.label}" for s in config.scenarios for t in targets[s]]
    by_key = {(r["scenario"], r["target"], r["estimator"]): r for r in rows}
    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    for title, cell in (
        ("Coverage", _coverage_cell),
        ("Width ratio", lambda r: _f(r["width_ratio"], ".2f")),
        ("Zero-width share", lambda r: _share(r["zero_share"])),
    ):
        lines += ["", f"## {title}", "", "| estimator | " + " | ".join(columns) + " |"]
        lines.append("|---|" + "---:|" * len(columns))
        for e in estimators:
            cells = []
            for s in config.scenarios:
                for t in targets[s]:
                    r = by_key.get((s, t.label, e))
                    cells.append("—" if r is None else cell(r))
            lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## All numbers",
        "",
        "| estimator | scenario | target | coverage | mean width | width ratio | zero-width "
        "| ∞ | bias | sd(error) | sd(estimate) | true value | ess | unsupported mass "
        "| evidence | logs |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in sorted(rows, key=lambda r: estimators.index(r["estimator"])):
        lines.append(
            f"| {r['estimator']} | {r['scenario']} | {r['target']} | {_coverage_cell(r)} | "
            f"{_f(r['mean_width'], '.4f')} | {_f(r['width_ratio'], '.2f')} | "
            f"{_share(r['zero_share'])} | {_share(r['inf_share'])} | {_f(r['bias'], '+.4f')} | "
            f"{_f(r['sd_err'], '.4f')} | {_f(r['sd_est'], '.4f')} | "
            f"{_f(r['truth_mean'], '.4f')} | {_f(r['ess'], '.0f')} | "
            f"{_f(r['unsupported'], '.3f')} | {r['evidence']} | {r['logs']} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- entry points
_OUTPUT_OPTIONS = ("--out", "--raw", "--code")


def _command(argv: Sequence[str]) -> str:
    """The command that reproduces the numbers: ``argv`` without the output options."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _OUTPUT_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in _OUTPUT_OPTIONS)):
            kept.append(arg)
    return " ".join(["python -m experiments.benchmarks.coverage", *kept])


def bench_coverage(quick: bool) -> list[Row]:
    """The benchmark row for ``python -m experiments.benchmarks``: the default configuration
    (``quick``: 6 logs of 2,000 rows); a full run also writes :data:`RESULTS`."""
    config = CoverageConfig(n_logs=6, n_rows=2000) if quick else CoverageConfig()
    t0 = time.perf_counter()
    records, targets = run_coverage(config)
    seconds = time.perf_counter() - t0
    summary = summarize(records)
    if not quick:
        command = "python -m experiments.benchmarks --only coverage"
        RESULTS.write_text(report(summary, targets, config, seconds, command, git_commit()))
    worst = summary.sort("coverage").row(0, named=True)
    zero = summary.filter(pl.col("zero_share") > 0)
    n_rows = config.n_logs * config.n_rows * len(config.scenarios)
    return [
        Row(
            f"coverage: {len(config.estimator_names())} estimators × "
            f"{len(config.scenarios)} scenarios × 3 targets, {config.n_logs} logs each",
            n_rows,
            seconds,
            unit="logged rows",
            target="full run ≤ 600 s on 2 cores",
            met=None if quick else seconds <= 600,
            notes=(
                f"{config.n_rows:,}-row logs, reward model {config.model} ({config.folds} "
                f"folds); lowest coverage {worst['coverage']:.3f} ({worst['estimator']}, "
                f"{worst['scenario']} / {worst['target']}); zero-width intervals in "
                f"{zero.height} of {summary.height} cells"
                + ("" if quick else f"; table in {RESULTS.name}")
            ),
            extra={
                "coverage": {
                    f"{r['estimator']}/{r['scenario']}/{r['target']}": r["coverage"]
                    for r in summary.to_dicts()
                }
            },
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run, print the markdown report, write it (full runs or ``--out``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.coverage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--logs", type=int, help="independent logs per scenario (200)")
    parser.add_argument("--rows", type=int, help="rows per log (10000)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    parser.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--estimators", nargs="+", help="registry names (default: all)")
    parser.add_argument(
        "--model", choices=("auto", "pooled_logistic", "ridge", "logistic"), default="auto"
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds (0: none)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--quick", action="store_true", help="6 logs of 2,000 rows")
    parser.add_argument("--out", help=f"write the report here (default for full runs: {RESULTS})")
    parser.add_argument("--raw", help="also write the per-estimate records (parquet)")
    parser.add_argument("--code", help="describe the measured code (default: git commit)")
    args = parser.parse_args(argv)
    config = CoverageConfig(
        scenarios=tuple(args.scenarios),
        n_logs=args.logs or (6 if args.quick else 200),
        n_rows=args.rows or (2000 if args.quick else 10_000),
        first_seed=args.first_seed,
        estimators=tuple(args.estimators) if args.estimators else None,
        model=args.model,
        folds=args.folds,
        jobs=args.jobs,
    )
    t0 = time.perf_counter()
    records, targets = run_coverage(config)
    seconds = time.perf_counter() - t0
    summary = summarize(records)
    text = report(summary, targets, config, seconds, _command(argv), args.code or git_commit())
    print(text)
    out = args.out or (None if args.quick else RESULTS)
    if out:
        Path(out).write_text(text)
        print(f"(written to {os.path.relpath(out)}; {seconds:.0f} s)", file=sys.stderr)
    if args.raw:
        records.write_parquet(args.raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
