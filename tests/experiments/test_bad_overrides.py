"""Every bad command-line value is one line: across the three apps, a bad type, range,
choice, unknown key, unknown group or option gives exit ≠ 0, exactly one ``error: …`` line
naming the key (or group) and what is allowed, no traceback — and no MLflow run, because
the check runs before anything is tracked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from app_cli import run_app, uniform_log_dir

LOG = "<log>"  # replaced by the fixture's decision log

#: (app, overrides, words the one line must contain)
CASES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("simulate", ("policy.alpha=abc",), ("policy.alpha", "number")),
    ("simulate", ("seed=-1",), ("seed=-1", "≥ 0")),
    ("simulate", ("seed=abc",), ("seed", "integer")),
    ("simulate", ("rounds=1.5",), ("rounds", "integer")),
    ("simulate", ("audience.n_users=abc",), ("audience.n_users", "integer")),
    ("simulate", ("audience.response.taste_weight=abc",), ("taste_weight", "number")),
    ("simulate", ("plot=maybe",), ("plot", "true or false")),
    ("simulate", ("foo=1",), ("unknown setting 'foo'", "rounds")),
    ("simulate", ("+foo=1",), ("unknown setting 'foo'",)),
    ("simulate", ("policy.nonexistent=3",), ("policy.nonexistent", "alpha")),
    ("simulate", ("experiment=retargeting_wins",), ("takes no 'experiment'", "audience")),
    ("simulate", ("policy=nope",), ("unknown policy 'nope'", "linucb")),
    ("simulate", ("-m", "policy=linucb,nope"), ("unknown policy 'nope'",)),
    ("simulate", ("metric_every=0",), ("metric_every", "≥ 1")),
    ("simulate", ("policy.epsilon=2",), ("epsilon", "[0, 1]")),
    ("simulate", ("tracking.uri=bogus://x",), ("bogus",)),
    ("evaluate", (f"logs={LOG}", "level=2"), ("level=2", "(0, 1)")),
    ("evaluate", (f"logs={LOG}", "interval=nope"), ("interval", "bounded")),
    ("evaluate", (f"logs={LOG}", "mode=sometimes"), ("mode", "replay")),
    ("evaluate", (f"logs={LOG}", "train_fraction=1.5"), ("train_fraction", "(0, 1)")),
    ("evaluate", (f"logs={LOG}", "stream.batch_rows=0"), ("stream.batch_rows", "≥ 1")),
    ("evaluate", (f"logs={LOG}", "reward_model.cross_fit_folds=1"), ("cross_fit_folds",)),
    ("evaluate", (f"logs={LOG}", "columns.bogus=x"), ("columns.bogus", "reward")),
    ("evaluate", (f"logs={LOG}", "audience=small"), ("takes no 'audience'", "columns")),
    ("evaluate", ("logs=/no/such/log",), ("/no/such/log",)),
    ("compare", ("rounds=abc",), ("rounds", "integer")),
    ("compare", ("power=2",), ("power=2", "(0, 1)")),
    ("compare", ("alpha=0",), ("alpha=0", "(0, 1)")),
    ("compare", ("replications=0",), ("replications=0", "≥ 1")),
    ("compare", ("n_blocks=0",), ("n_blocks=0", "≥ 2")),
    ("compare", ("baseline=nope",), ("baseline 'nope'", "retargeting")),
    ("compare", ("source=db",), ("source", "logs")),
    ("compare", ("experiment=nope",), ("unknown experiment 'nope'", "retargeting_wins")),
    ("compare", ("+experiment=retargeting_wins",), ("experiment=", "no +")),
    ("compare", ("ladder.lints.alpha=2",), ("ladder.lints", "+ladder.lints")),
    ("compare", ("guardrail.max_extra_unsubscribe_per_1000=abc",), ("guardrail", "number")),
    ("compare", ("n_jobs=abc",), ("n_jobs", "integer")),
    ("compare", ("focus=[nope]",), ("focus", "nope", "linucb")),
]


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    return uniform_log_dir(
        tmp_path_factory.mktemp("logs"), n_users=1000, per_day=500, env_seed=5, rounds=1500
    )


def _store_runs(db: Path) -> int:
    if not db.exists():
        return 0
    import sqlite3

    with sqlite3.connect(db) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master")}
        return con.execute("select count(*) from runs").fetchone()[0] if "runs" in tables else 0


def test_at_least_twenty_bad_values_across_the_three_apps():
    assert len(CASES) >= 20
    assert {app for app, _, _ in CASES} == {"simulate", "evaluate", "compare"}


def test_every_bad_value_is_one_line_with_no_run(tmp_path, log_dir):
    def attempt(index: int):
        app, args, words = CASES[index]
        where = tmp_path / f"case{index}"
        where.mkdir()
        args = tuple(a.replace(LOG, str(log_dir)) for a in args)
        proc = run_app(app, where, *args, timeout=300)
        return app, args, words, proc, _store_runs(where / "mlflow.db")

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(attempt, range(len(CASES))))
    problems = []
    for app, args, words, proc, runs in results:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        what = f"{app} {' '.join(args)}"
        if proc.returncode == 0:
            problems.append(f"{what}: exit 0")
        if "Traceback" in proc.stderr or len(lines) != 1 or not lines[0].startswith("error:"):
            problems.append(f"{what}: not one error line: {proc.stderr[-600:]!r}")
        elif not all(w in lines[0] for w in words):
            problems.append(f"{what}: {lines[0]!r} lacks {words}")
        if runs:
            problems.append(f"{what}: left {runs} MLflow run(s)")
    assert not problems, "\n".join(problems)
