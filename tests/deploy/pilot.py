"""A pilot end to end with real processes: train in simulation → log the model → ``decide``
for an audience drawn from the simulator → responses drawn from the simulator's exact
expected rewards → ``join`` → ``evaluate`` and ``compare source=logs`` on the joined log.

The truth is known exactly: for the audience's ``n`` contexts with expected rewards
``q (n, K)`` (the simulator's), the deployed policy's value on this audience is
``V(π) = mean_i Σ_a π(a|x_i) q(x_i, a)`` and the holdout arm's ``V(h)`` likewise, so the
true incrementality is ``V(π) − V(h)``. Rewards are ``Bernoulli(q(x_i, a_i))`` draws.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
DECIDED_AT = dt.datetime(2026, 3, 2, 9, 0, 0)
WINDOW_DAYS = 7


def run_app(app: str, *args: str, cwd: Path, env: dict[str, str] | None = None):
    """``python -m experiments.<app> args…`` as a real process (returns the completed one)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{app}", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@dataclass
class Pilot:
    """What one pilot produced and what the simulator knows about it."""

    workdir: Path
    store: str
    decisions: pl.DataFrame
    joined: Path
    truth_policy: float
    truth_holdout: float
    injected_late: int
    injected_unknown: int
    rewarded: int


def train_and_log(workdir: Path, seed: int, rounds: int, n_users: int) -> tuple[str, object]:
    """Train LinUCB (ε = 0.2) online on a synthetic audience and register it as ``pilot``."""
    import mlflow

    from bandits import tracking
    from bandits.policies import make_policy
    from bandits.simulate import AudienceSettings, Environment, run_online
    from bandits.tracking.policy_model import log_policy_model

    store = f"sqlite:///{workdir / 'mlflow.db'}"
    tracking.configure(store)
    env = Environment(AudienceSettings(n_users=n_users, impressions_per_day=2000), seed)
    policy = make_policy("linucb", {"epsilon": 0.2})
    run_online(env, policy, rounds, seed + 1, keep_log=False, eval_rounds=0)
    mlflow.set_experiment("train")
    with mlflow.start_run():
        log_policy_model(policy, registered_model_name="pilot")
    return store, env


def run_pilot(
    workdir: Path,
    seed: int,
    *,
    rounds: int = 6000,
    n_users: int = 3000,
    audience_rows: int = 6000,
    share: float = 0.3,
) -> Pilot:
    """One pilot (module docstring), every app a separate process."""
    store, env = train_and_log(workdir, seed, rounds, n_users)
    day = env.evaluation_day(audience_rows, seed + 2)  # type: ignore[attr-defined]
    q = day.truth.expected_reward  # (n, K): the exact expected reward of every variant
    audience = day.frame.with_columns(pl.format("cust-{}", pl.col("user_key")).alias("customer"))
    audience.drop("user_key").write_parquet(workdir / "audience.parquet")
    key = {"BANDITS_ID_KEY": "a-test-key-of-enough-length"}
    out = run_app(
        "decide",
        "model=models:/pilot/1",
        "users=audience.parquet",
        "output=decisions",
        f"seed={seed}",
        f"holdout.share={share}",
        "holdout.baseline=retargeting",
        "columns.user=customer",
        f"decided_at={DECIDED_AT.isoformat()}",
        f"tracking.uri={store}",
        cwd=workdir,
        env=key,
    )
    if out.returncode != 0:
        raise AssertionError(f"decide failed:\n{out.stderr[-3000:]}")
    decisions = pl.read_parquet(workdir / "decisions" / "decision_log.parquet")
    ids = list(decisions.schema)
    assert "customer" not in ids and "user_key" in ids  # raw ids never stored
    pi = np.stack(decisions["policy_probs"].to_numpy())
    h = np.stack(decisions["holdout_probs"].to_numpy())
    truth_policy = float((pi * q).sum(axis=1).mean())
    truth_holdout = float((h * q).sum(axis=1).mean())

    rng = np.random.default_rng(seed + 3)
    catalog = pl.read_parquet(workdir / "decisions" / "catalog.parquet")
    index = {v: i for i, v in enumerate(catalog["variant_id"].to_list())}
    a = decisions["action"].replace_strict(index, return_dtype=pl.Int64).to_numpy()
    q_shown = q[np.arange(len(a)), a]
    clicked = rng.random(len(a)) < q_shown
    event_ids = decisions["event_id"].to_numpy()
    delay = rng.uniform(0, WINDOW_DAYS * 86400 - 60, len(a))
    at = np.datetime64(DECIDED_AT, "us") + (delay * 1e6).astype("timedelta64[us]")
    events = [
        pl.DataFrame({"event_id": event_ids[clicked], "reward": 1.0, "occurred_at": at[clicked]})
    ]
    # noise the join must count, not attribute: late clicks on unclicked decisions and
    # clicks for event ids that were never decided
    late_rows = rng.choice(np.flatnonzero(~clicked), size=25, replace=False)
    late_at = DECIDED_AT + dt.timedelta(days=WINDOW_DAYS, hours=1)
    events.append(
        pl.DataFrame({"event_id": event_ids[late_rows], "reward": 1.0}).with_columns(
            occurred_at=pl.lit(late_at)
        )
    )
    events.append(
        pl.DataFrame(
            {"event_id": [f"unknown-{i}" for i in range(7)], "reward": 1.0, "occurred_at": at[:7]}
        )
    )
    frame = pl.concat(
        [e.with_columns(pl.col("occurred_at").cast(pl.Datetime("us"))) for e in events]
    )
    frame.sample(fraction=1.0, shuffle=True, seed=seed).write_csv(workdir / "rewards.csv")
    as_of = DECIDED_AT + dt.timedelta(days=WINDOW_DAYS + 2)
    out = run_app(
        "join",
        "decisions=decisions",
        "rewards=rewards.csv",
        "output=joined",
        f"window={WINDOW_DAYS}d",
        f"as_of={as_of.isoformat()}",
        cwd=workdir,
    )
    if out.returncode != 0:
        raise AssertionError(f"join failed:\n{out.stderr[-3000:]}")
    return Pilot(
        workdir=workdir,
        store=store,
        decisions=decisions,
        joined=workdir / "joined",
        truth_policy=truth_policy,
        truth_holdout=truth_holdout,
        injected_late=25,
        injected_unknown=7,
        rewarded=int(clicked.sum()),
    )


def last_run_metrics(store: str, experiment: str) -> dict[str, float]:
    """The metrics of the newest run of ``experiment`` that has no parent (a comparison's
    parent, an evaluation)."""
    import mlflow

    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=[experiment], order_by=["start_time DESC"])
    if "tags.mlflow.parentRunId" in runs.columns:
        runs = runs[runs["tags.mlflow.parentRunId"].isna()]
    row = runs.iloc[0]
    return {c[len("metrics.") :]: float(row[c]) for c in runs.columns if c.startswith("metrics.")}


def evaluate_deployed(p: Pilot) -> dict[str, float]:
    """``evaluate`` of the deployed policy (its probabilities are a column of the log)."""
    out = run_app(
        "evaluate",
        "logs=joined",
        "policy=given",
        "policy.column=policy_probs",
        "estimators=[ips,snips,dr]",
        f"tracking.uri={p.store}",
        cwd=p.workdir,
    )
    if out.returncode != 0:
        raise AssertionError(f"evaluate failed:\n{out.stderr[-3000:]}")
    return last_run_metrics(p.store, "evaluate")


def compare_holdout(p: Pilot) -> dict[str, float]:
    """``compare source=logs``: the deployed policy vs the holdout arm, both read from the
    log's columns, the holdout the baseline."""
    out = run_app(
        "compare",
        "source=logs",
        "logs=joined",
        "~ladder",
        "+ladder={deployed: {name: given, column: policy_probs}, "
        "holdout: {name: given, column: holdout_probs}}",
        "baseline=holdout",
        "focus=[deployed]",
        "versus=[holdout]",
        f"tracking.uri={p.store}",
        cwd=p.workdir,
    )
    if out.returncode != 0:
        raise AssertionError(f"compare failed:\n{out.stderr[-3000:]}")
    return last_run_metrics(p.store, "compare")
