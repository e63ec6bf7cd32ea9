"""``decide`` throughput, file to file: read an audience parquet, score, sample, write the
decision records (parquet, atomically) — :func:`bandits.deploy.decide_file`, the decide
app's whole job after the model is loaded.

``python -m experiments.benchmarks.decide`` (``--quick``: a smoke test; ``--users``,
``--vw-users``, ``--seed``) prints one table. A LinUCB (ε = 0.1) and a VW (epsilon explorer)
policy are trained online on 20,000 rounds of the default synthetic audience (12 variants);
the audience file is 100,000 simulated contexts repeated to ``--users`` rows (the columns
the policy reads: the work per user does not depend on the values). Times are the best of
``repeats`` runs after one warm-up call, each the whole ``decide_file`` call (read,
featurise, score, sample, build the records, encode and write the file, fsync, rename).

Target (issue 16): ≥ 10M users per minute (≈ 166,667 users/s) for LinUCB on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

from bandits.deploy import DeployedPolicy, Holdout, decide_file
from bandits.policies import make_policy
from bandits.simulate import AudienceSettings, Environment, run_online
from experiments.benchmarks.common import Row, best_time, git_commit, table

TARGET_PER_S = 10_000_000 / 60.0


def _trained(name: str, settings: dict, seed: int) -> tuple[DeployedPolicy, Environment]:
    env = Environment(AudienceSettings(impressions_per_day=2_000), seed)
    policy = make_policy(name, settings)
    run_online(env, policy, 20_000, seed + 1, keep_log=False, eval_rounds=0)
    return DeployedPolicy.from_policy(policy), env


def _audience(env: Environment, users: int, path: Path, seed: int) -> None:
    base = env.evaluation_day(100_000, seed).frame.drop("user_key", "timestamp")
    reps = -(-users // base.height)
    frame = pl.concat([base] * reps).head(users)
    frame.write_parquet(path)


def _row(name: str, deployed, audience, out, users, repeats, seed, **kw) -> Row:
    decide_file(deployed, audience, out, seed=seed, **kw)  # warm: compile / page cache
    seconds, summary = best_time(
        lambda: decide_file(deployed, audience, out, seed=seed, **kw), repeats=repeats
    )
    assert summary.rows == users
    size = Path(summary.output).stat().st_size / 2**20
    return Row(
        name,
        users,
        seconds,
        unit="users",
        target="≥ 10M users/min" if name.startswith("decide linucb") else "",
        met=(users / seconds >= TARGET_PER_S) if name.startswith("decide linucb") else None,
        notes=f"{users / seconds * 60 / 1e6:.1f}M users/min; output {size:.0f} MiB parquet",
    )


def bench_decide(
    quick: bool, users: int | None = None, vw_users: int | None = None, seed: int = 5
) -> list[Row]:
    """Rows: LinUCB without and with a 10% retargeting holdout, VW without a holdout."""
    users = users or (20_000 if quick else 2_000_000)
    vw_users = vw_users or (2_000 if quick else 100_000)
    repeats = 1 if quick else 2
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        linucb, env = _trained("linucb", {"epsilon": 0.1}, seed)
        _audience(env, users, d / "audience.parquet", seed + 2)
        out = d / "decisions.parquet"
        rows.append(
            _row("decide linucb", linucb, d / "audience.parquet", out, users, repeats, seed)
        )
        rows.append(
            _row(
                "decide linucb, 10% retargeting holdout",
                linucb,
                d / "audience.parquet",
                out,
                users,
                repeats,
                seed,
                holdout=Holdout(0.1),
            )
        )
        vw, env = _trained("vw", {}, seed)
        _audience(env, vw_users, d / "vw_audience.parquet", seed + 2)
        rows.append(_row("decide vw", vw, d / "vw_audience.parquet", out, vw_users, repeats, seed))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmarks.decide")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--users", type=int)
    parser.add_argument("--vw-users", type=int)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    rows = bench_decide(args.quick, args.users, args.vw_users, args.seed)
    print(f"decide throughput, file to file (commit {git_commit()})\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
