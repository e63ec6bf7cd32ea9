"""Policies given from outside (``bandits.policies.given``): probabilities in the log itself
(``given``) and a table per context cell (``table``).

Checks: every way of naming the probabilities reads the same ``(n, K)``; the probability
columns never become context and are listed as target policy probabilities; a table matches
each row to its cell (wide and long, parquet and CSV, Enum / text / numeric keys); bad input
is one line naming the column or file and the first rows or cells; the ``evaluate`` app's
estimates equal those of the same probabilities given in Python (to 1e-12), on-policy a table
equal to the logger's own distribution gives IPS = the mean logged reward, and streamed
evaluation works; a bad table stops before any MLflow run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from bandits.data import load_log
from bandits.data.columns import column_table
from bandits.data.io import write_log, write_log_dir
from bandits.errors import ConfigError, DataError
from bandits.offline import evaluate_policy, make_estimators
from bandits.offline.evaluate import contexts_of
from bandits.policies import Policy, make_policy
from bandits.simulate import default_feature_schema
from bandits.simulate.scenarios import ScenarioLog, make_scenario

_spec = importlib.util.spec_from_file_location(
    "app_cli", Path(__file__).parent / "experiments" / "app_cli.py"
)
assert _spec is not None and _spec.loader is not None
app_cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(app_cli)

ESTIMATORS = ["ips", "snips", "dm", "dr", "sndr", "switch_dr", "dros"]
#: The cell of the ``epsilon_greedy`` scenario's logger (retargeting with ε = 0.3).
RULE_KEYS = ["channel", "last_viewed_category", "days_since_view"]


class FixedProbs(Policy):
    """The in-Python equivalent: a given ``(n, K)`` matrix, row i for log row i."""

    learns = False

    def __init__(
        self, probs: np.ndarray | None = None, *, epsilon: float = 0.0, update_every: int = 1
    ) -> None:
        super().__init__(epsilon=epsilon, update_every=update_every)
        self.probs = probs

    def _action_probs(self, ctx):
        assert self.probs is not None and len(ctx) == self.probs.shape[0]
        return self.probs


@pytest.fixture(scope="module")
def scenario() -> ScenarioLog:
    return make_scenario("epsilon_greedy", 3000, 5)


@pytest.fixture(scope="module")
def target(scenario) -> np.ndarray:
    """A target policy ``(n, K)``: a different distribution on every row."""
    rng = np.random.default_rng(0)
    return rng.dirichlet(np.full(scenario.data.n_actions, 0.7), scenario.data.n)


def _with_prefix(frame: pl.DataFrame, probs: np.ndarray, ids, prefix: str = "p_"):
    return frame.with_columns(pl.Series(f"{prefix}{v}", probs[:, j]) for j, v in enumerate(ids))


def _probs(name: str, settings: dict[str, Any], log, catalog) -> np.ndarray:
    """Load ``log`` as the evaluate app does for policy ``name`` and return its ``(n, K)``."""
    policy = make_policy(name, settings)
    data = load_log(log, catalog=catalog, target_columns=policy.target_columns)
    policy.reset(data.problem_spec(), 0)
    return policy.action_probs(contexts_of(data))


def _rule_table(scenario: ScenarioLog) -> pl.DataFrame:
    """The logger's own distribution per cell of :data:`RULE_KEYS`, wide (one column per id)."""
    ids = scenario.data.action_ids
    frame = scenario.data.frame.select(*RULE_KEYS, "action_probs")
    cells = frame.group_by(RULE_KEYS, maintain_order=True).agg(
        pl.col("action_probs").first(), pl.col("action_probs").n_unique().alias("distinct")
    )
    assert cells["distinct"].max() == 1  # the rule's distribution is a function of the cell
    probs = cells["action_probs"].to_numpy()
    return cells.select(RULE_KEYS).with_columns(
        pl.Series(v, probs[:, j]) for j, v in enumerate(ids)
    )


# --------------------------------------------------------------------------- given
def test_probability_columns_are_not_context_and_are_listed(scenario, target):
    ids = scenario.data.action_ids
    frame = _with_prefix(scenario.data.frame, target, ids)
    policy = make_policy("given", {"prefix": "p_"})
    data = load_log(frame, catalog=scenario.catalog, target_columns=policy.target_columns)
    plain = load_log(scenario.data.frame, catalog=scenario.catalog)
    assert data.target_columns == tuple(f"p_{v}" for v in ids)
    assert data.context_columns == plain.context_columns
    assert data.features == plain.features  # inferred: no p_ column became a feature
    roles = dict(column_table(data).select("column", "role").iter_rows())
    assert {roles[f"p_{v}"] for v in ids} == {"target policy probabilities"}
    # without target_columns the same columns would have been context
    assert set(load_log(frame, catalog=scenario.catalog).context_columns) > set(
        data.context_columns
    )


def test_every_form_of_given_reads_the_same_probabilities(scenario, target, tmp_path):
    ids, k = scenario.data.action_ids, scenario.data.n_actions
    frame = scenario.data.frame
    names = [f"pi{j}" for j in range(k)]
    forms = {
        "prefix": (_with_prefix(frame, target, ids), {"prefix": "p_"}),
        "columns": (_with_prefix(frame, target, names, ""), {"columns": names}),
        "array": (
            frame.with_columns(pl.Series("target_probs", target, dtype=pl.Array(pl.Float64, k))),
            {"column": "target_probs"},
        ),
        "list": (
            frame.with_columns(pl.Series("target_probs", target.tolist())),
            {"column": "target_probs"},
        ),
    }
    for form, (log, settings) in forms.items():
        got = _probs("given", settings, log, scenario.catalog)
        np.testing.assert_array_equal(got, target, err_msg=form)
    # a CSV log stores the array column as text "[0.1,...]"
    csv = write_log(forms["array"][0], tmp_path / "log.csv")
    got = _probs("given", {"column": "target_probs"}, csv, scenario.catalog)
    np.testing.assert_array_equal(got, target)
    # the logger's own distribution: IPS weights are exactly 1
    own = _probs("given", {"column": "action_probs"}, frame, scenario.catalog)
    np.testing.assert_array_equal(own, scenario.data.logging_probs)


def test_given_estimates_equal_the_same_probabilities_in_python(scenario, target):
    ids = scenario.data.action_ids
    policy = make_policy("given", {"prefix": "p_"})
    frame = _with_prefix(scenario.data.frame, target, ids)
    data = load_log(frame, catalog=scenario.catalog, target_columns=policy.target_columns)
    plain = load_log(scenario.data.frame, catalog=scenario.catalog)
    ests = make_estimators(ESTIMATORS, seed=1)
    got = evaluate_policy(data, policy.reset(data.problem_spec(), 1), ests, seed=1)
    want = evaluate_policy(plain, FixedProbs(target).reset(plain.problem_spec(), 1), ests, seed=1)
    for name, est in want.estimates.items():
        for attr in ("value", "ci_low", "ci_high", "stderr"):
            assert getattr(got.estimates[name], attr) == pytest.approx(
                getattr(est, attr), abs=1e-12
            ), (name, attr)


# --------------------------------------------------------------------------- table
@pytest.fixture
def cells_log() -> tuple[pl.DataFrame, pl.DataFrame, dict[tuple[str, int], list[float]]]:
    """A small log keyed by (segment: Enum, hour: int), its catalog and the true cell rows."""
    rng = np.random.default_rng(3)
    segments, hours = ["loyal", "new", "lapsed"], [8, 20]
    n = 60
    seg = rng.choice(segments, n)
    hour = rng.choice(hours, n)
    log = pl.DataFrame(
        {
            "action": rng.choice(["a", "b", "c"], n),
            "reward": rng.integers(0, 2, n).astype(float),
            "propensity": np.full(n, 1 / 3),
            "segment": pl.Series(seg, dtype=pl.Enum(segments)),
            "hour": hour,
        }
    )
    truth = {(s, h): list(rng.dirichlet(np.ones(3))) for s in segments for h in hours}
    return log, pl.DataFrame({"variant_id": ["a", "b", "c"]}), truth


def _wide(truth, hour_dtype=pl.Int64) -> pl.DataFrame:
    keys = list(truth)
    return pl.DataFrame(
        {
            "segment": [s for s, _ in keys],
            "hour": pl.Series([h for _, h in keys], dtype=hour_dtype),
            **{v: [truth[c][j] for c in keys] for j, v in enumerate("abc")},
        }
    )


def test_table_matches_each_row_to_its_cell(cells_log, tmp_path):
    log, catalog, truth = cells_log
    want = np.array([truth[(s, h)] for s, h in log.select("segment", "hour").iter_rows()])
    wide = _wide(truth)
    long = wide.unpivot(
        index=["segment", "hour"], variable_name="variant_id", value_name="probability"
    )
    long = long.sample(fraction=1.0, shuffle=True, seed=1)  # any row order
    wide.write_csv(tmp_path / "cells.csv")
    long.write_parquet(tmp_path / "cells.parquet")
    tables = {
        "wide frame": wide,
        "wide float hours": _wide(truth, pl.Float64),  # numbers match by value
        "wide csv": str(tmp_path / "cells.csv"),
        "long parquet": str(tmp_path / "cells.parquet"),
    }
    for label, table in tables.items():
        settings = {"table": table, "keys": ["segment", "hour"]}
        got = _probs("table", settings, log, catalog)
        np.testing.assert_array_equal(got, want, err_msg=label)
    # one cell for everyone
    one = pl.DataFrame({"a": [0.5], "b": [0.25], "c": [0.25]})
    np.testing.assert_array_equal(
        _probs("table", {"table": one, "keys": []}, log, catalog),
        np.tile([0.5, 0.25, 0.25], (log.height, 1)),
    )


def test_a_long_table_may_leave_out_zero_probabilities(cells_log):
    log, catalog, _ = cells_log
    long = pl.DataFrame(
        {"segment": ["loyal", "new", "lapsed"], "variant_id": ["a", "b", "c"], "probability": 1.0}
    )
    got = _probs("table", {"table": long, "keys": ["segment"]}, log, catalog)
    want = np.eye(3)[log["segment"].to_physical().to_numpy()]  # Enum codes: loyal, new, lapsed
    np.testing.assert_array_equal(got, want)


def test_missing_uniform_gives_rows_outside_the_table_one_over_k(cells_log):
    log, catalog, truth = cells_log
    table = _wide(truth).filter(pl.col("segment") != "new")
    got = _probs(
        "table", {"table": table, "keys": ["segment", "hour"], "missing": "uniform"}, log, catalog
    )
    new = (log["segment"] == "new").to_numpy()
    assert new.any()
    np.testing.assert_array_equal(got[new], np.full((new.sum(), 3), 1 / 3))
    with pytest.raises(DataError, match="cells \\[segment=new, hour="):
        _probs("table", {"table": table, "keys": ["segment", "hour"]}, log, catalog)


# --------------------------------------------------------------------------- bad input
def _given_log(n: int = 8) -> pl.DataFrame:
    probs = np.tile([0.2, 0.3, 0.5], (n, 1))
    return pl.DataFrame(
        {
            "action": ["a", "b", "c", "a"] * (n // 4),
            "reward": [1.0, 0.0] * (n // 2),
            "propensity": 1 / 3,
            "segment": ["loyal", "new"] * (n // 2),
            "channel": ["email", "email", "sms", "sms"] * (n // 4),
            "p_a": probs[:, 0],
            "p_b": probs[:, 1],
            "p_c": probs[:, 2],
            "target_probs": probs.tolist(),
        }
    )


def _set(frame: pl.DataFrame, column: str, row: int, value: Any) -> pl.DataFrame:
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


def _cells(**overrides: Any) -> pl.DataFrame:
    table = {
        "segment": ["loyal", "loyal", "new", "new"],
        "channel": ["email", "sms", "email", "sms"],
        "a": [0.2, 0.5, 0.1, 1.0],
        "b": [0.3, 0.5, 0.1, 0.0],
        "c": [0.5, 0.0, 0.8, 0.0],
    }
    return pl.DataFrame({**table, **overrides})


def _long_cells() -> pl.DataFrame:
    return _cells().unpivot(
        index=["segment", "channel"], variable_name="variant_id", value_name="probability"
    )


KEYS = ["segment", "channel"]
Case = tuple[str, dict[str, Any], Callable[[pl.DataFrame], pl.DataFrame], type, str]
BAD: dict[str, Case] = {
    "negative": (
        "given",
        {"prefix": "p_"},
        lambda f: _set(_set(f, "p_a", 2, -0.1), "p_b", 2, 0.6),
        DataError,
        r"columns 'p_<variant id>': negative, NaN or missing probabilities \(column 'p_a'\) in "
        r"rows \[2\] \(1 in all\), e.g. \[-0.1\]",
    ),
    "nan": (
        "given",
        {"columns": ["p_a", "p_b", "p_c"]},
        lambda f: _set(f, "p_b", 4, float("nan")),
        DataError,
        r"negative, NaN or missing probabilities \(column 'p_b'\) in rows \[4\]",
    ),
    "null": (
        "given",
        {"prefix": "p_"},
        lambda f: _set(f, "p_c", 5, None),
        DataError,
        r"missing probabilities \(column 'p_c'\) in rows \[5\]",
    ),
    "not summing to 1": (
        "given",
        {"prefix": "p_"},
        lambda f: _set(f, "p_a", 1, 0.21),
        DataError,
        r"do not sum to 1 \(tolerance 1e-06; they are not renormalised\) in rows \[1\] "
        r"\(1 in all\), e.g. sums 1.01",
    ),
    "array not summing to 1": (
        "given",
        {"column": "target_probs"},
        lambda f: _set(f, "target_probs", 6, [0.5, 0.5, 0.5]),
        DataError,
        r"column 'target_probs': probabilities that do not sum to 1 .* in rows \[6\]",
    ),
    "list of the wrong length": (
        "given",
        {"column": "target_probs"},
        lambda f: _set(f, "target_probs", 3, [0.5, 0.5]),
        DataError,
        r"column 'target_probs': lists of 2 probabilities but the catalog has K = 3 variants, in "
        r"rows \[3\]",
    ),
    "array of the wrong width": (
        "given",
        {"column": "target_probs"},
        lambda f: f.with_columns(
            pl.Series("target_probs", np.tile([0.5, 0.5], (f.height, 1)), pl.Array(pl.Float64, 2))
        ),
        DataError,
        r"arrays of 2 probabilities but the catalog has K = 3",
    ),
    "text that is not a list": (
        "given",
        {"column": "target_probs"},
        lambda f: f.with_columns(pl.Series("target_probs", ["[0.2,0.3,0.5]"] * 7 + ["0.2;0.8"])),
        DataError,
        r"column 'target_probs': text that is not a list of numbers in rows \[7\]",
    ),
    "text column holding words": (
        "given",
        {"prefix": "p_"},
        lambda f: f.with_columns(pl.col("p_b").cast(pl.String)),
        DataError,
        r"column 'p_b' holds String, not probabilities",
    ),
    "prefix: unknown id": (
        "given",
        {"prefix": "p_"},
        lambda f: f.with_columns(p_z=0.0),
        DataError,
        r"columns p_z name variant\(s\) 'z' not in the catalog",
    ),
    "prefix: missing id": (
        "given",
        {"prefix": "p_"},
        lambda f: f.drop("p_c"),
        DataError,
        r"no column for variant\(s\) 'c'",
    ),
    "prefix: no column at all": (
        "given",
        {"prefix": "q_"},
        lambda f: f,
        DataError,
        r"policy 'given' reads its probabilities from the log, which has no column starting "
        r"with 'q_' \(policy.prefix; columns: action, ",
    ),
    "columns: wrong number": (
        "given",
        {"columns": ["p_a", "p_b"]},
        lambda f: f,
        ConfigError,
        r"policy.columns names 2 columns but the catalog has 3 variants",
    ),
    "column not in the log": (
        "given",
        {"column": "probs"},
        lambda f: f,
        DataError,
        r"no column 'probs' \(policy.column; columns: action, ",
    ),
    "the propensity column": (
        "given",
        {"column": "propensity"},
        lambda f: f,
        DataError,
        r"column 'propensity' is the propensity column",
    ),
    "two sources": (
        "given",
        {"column": "target_probs", "prefix": "p_"},
        lambda f: f,
        ConfigError,
        r"reads one of policy.column, policy.columns, policy.prefix; got policy.column and "
        r"policy.prefix",
    ),
    "no source": (
        "given",
        {},
        lambda f: f,
        ConfigError,
        r"policy 'given' needs to know where the target's probabilities are",
    ),
    "table: key column absent from the table": (
        "table",
        {"table": _cells().drop("channel"), "keys": KEYS},
        lambda f: f,
        DataError,
        r"the table: no key column 'channel'",
    ),
    "table: key column absent from the log": (
        "table",
        {"table": _cells(), "keys": KEYS},
        lambda f: f.drop("channel"),
        DataError,
        r"key column\(s\) channel are not in the log",
    ),
    "table: log cell not in the table": (
        "table",
        {"table": _cells().filter(pl.col("channel") != "sms"), "keys": KEYS},
        lambda f: f,
        DataError,
        r"log rows whose cell is not in the table, rows \[2, 3, 6, 7\] \(4 in all\): cells "
        r"\[segment=loyal, channel=sms; segment=new, channel=sms\] \(2 in all\); add them to the "
        r"table or set policy.missing=uniform",
    ),
    "table: duplicate cells": (
        "table",
        {"table": pl.concat([_cells(), _cells().head(1)]), "keys": KEYS},
        lambda f: f,
        DataError,
        r"cells listed more than once: segment=loyal, channel=email \(in rows \[0, 4\]",
    ),
    "table: unknown variant column": (
        "table",
        {"table": _cells(zz=[0.0] * 4), "keys": KEYS},
        lambda f: f,
        DataError,
        r"the variant columns do not match the catalog: column\(s\) zz are neither keys",
    ),
    "table: missing variant column": (
        "table",
        {"table": _cells().drop("c"), "keys": KEYS},
        lambda f: f,
        DataError,
        r"the variant columns do not match the catalog: no column for variant\(s\) c",
    ),
    "table: a key not named in keys": (
        "table",
        {"table": _cells(), "keys": ["segment"]},
        lambda f: f,
        DataError,
        r"column\(s\) channel are neither keys \(policy.keys=\['segment'\]\) nor variant ids",
    ),
    "table: cell not summing to 1": (
        "table",
        {"table": _cells(c=[0.5, 0.0, 0.7, 0.0]), "keys": KEYS},
        lambda f: f,
        DataError,
        r"probabilities that do not sum to 1 .* in cells \[segment=new, channel=email\] "
        r"\(1 in all\), e.g. sums 0.9",
    ),
    "table: negative cell": (
        "table",
        {"table": _cells(a=[0.2, 0.5, 0.1, 1.1], b=[0.3, 0.5, 0.1, -0.1]), "keys": KEYS},
        lambda f: f,
        DataError,
        r"negative, NaN or missing probabilities \(variant 'b'\) in cells "
        r"\[segment=new, channel=sms\]",
    ),
    "table: null key": (
        "table",
        {"table": _cells(segment=["loyal", None, "new", "new"]), "keys": KEYS},
        lambda f: f,
        DataError,
        r"key column 'segment' has missing values in rows \[1\]",
    ),
    "table: empty": (
        "table",
        {"table": _cells().head(0), "keys": KEYS},
        lambda f: f,
        DataError,
        r"the table is empty",
    ),
    "long: unknown variant": (
        "table",
        {"table": _long_cells().with_columns(pl.col("variant_id").replace("b", "x")), "keys": KEYS},
        lambda f: f,
        DataError,
        r"variant_id values not in the catalog in rows \[4, 5, 6, 7\] \(4 in all\), e.g. \['x'\]",
    ),
    "long: a pair twice": (
        "table",
        {"table": pl.concat([_long_cells(), _long_cells().tail(1)]), "keys": KEYS},
        lambda f: f,
        DataError,
        r"\(cell, variant\) pairs listed more than once: segment=new, channel=sms, variant_id=c",
    ),
    "long: another column": (
        "table",
        {"table": _long_cells().with_columns(note=pl.lit("x")), "keys": KEYS},
        lambda f: f,
        DataError,
        r"column\(s\) note are none of these",
    ),
    "table: no such file": (
        "table",
        {"table": "/no/such/cells.csv", "keys": KEYS},
        lambda f: f,
        ConfigError,
        r"policy.table: no such file: /no/such/cells.csv",
    ),
    "table: keys not given": (
        "table",
        {"table": _cells()},
        lambda f: f,
        ConfigError,
        r"policy 'table' needs policy.keys",
    ),
    "table: no table": (
        "table",
        {"keys": KEYS},
        lambda f: f,
        ConfigError,
        r"policy 'table' needs policy.table",
    ),
    "table: unknown missing": (
        "table",
        {"table": _cells(), "keys": KEYS, "missing": "guess"},
        lambda f: f,
        ConfigError,
        r"policy.missing must be one of error, uniform, got 'guess'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_naming_column_or_cells(case):
    name, settings, change, error, message = BAD[case]
    catalog = pl.DataFrame({"variant_id": ["a", "b", "c"]})
    with pytest.raises(error, match=message) as info:
        _probs(name, settings, change(_given_log()), catalog)
    assert "\n" not in str(info.value)


def test_sums_within_the_tolerance_are_accepted_as_they_are():
    catalog = pl.DataFrame({"variant_id": ["a", "b", "c"]})
    log = _set(_given_log(), "p_a", 0, 0.2 + 5e-7)
    got = _probs("given", {"prefix": "p_"}, log, catalog)
    assert got[0, 0] == 0.2 + 5e-7  # not renormalised


# --------------------------------------------------------------------------- the evaluate app
def _cli(tmp_path: Path, *args: str):
    return app_cli.run_app("evaluate", tmp_path, *args)


def _errors(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]


@pytest.fixture(scope="module")
def prefixed_dir(scenario, target, tmp_path_factory) -> Path:
    """The scenario's log with ``p_<id>`` target columns, no metadata (features inferred)."""
    frame = _with_prefix(scenario.data.frame, target, scenario.data.action_ids)
    d = tmp_path_factory.mktemp("given") / "decision_log"
    write_log_dir(d, frame, scenario.catalog)
    return d


def test_evaluate_app_given_equals_python_and_streams(tmp_path, scenario, target, prefixed_dir):
    """``policy=given policy.prefix=p_`` evaluates with every estimator (mode auto -> fixed)
    to the estimates of the same probabilities in Python on the log without those columns
    (so they cannot have been context); the column table lists them; streamed, IPS and SNIPS
    are those of the whole log."""
    proc = _cli(tmp_path, f"logs={prefixed_dir}", "policy=given", "policy.prefix=p_")
    assert proc.returncode == 0, proc.stderr
    assert "target policy probabilities" in proc.stderr
    (run,) = app_cli.mlflow_runs(tmp_path, "evaluate")
    assert run.data.params["resolved_mode"] == "fixed"
    plain = load_log(scenario.data.frame, catalog=scenario.catalog)
    ests = make_estimators(ESTIMATORS, seed=1)
    want = evaluate_policy(plain, FixedProbs(target).reset(plain.problem_spec(), 1), ests, seed=1)
    m = run.data.metrics
    for name, est in want.estimates.items():
        for attr in ("value", "ci_low", "ci_high"):
            assert m[f"{name}.{attr}"] == pytest.approx(getattr(est, attr), abs=1e-12), name
    assert m["true_value"] == pytest.approx(want.true_value, abs=1e-12)

    streamed = tmp_path / "streamed"
    proc = app_cli.run_app(
        "evaluate",
        streamed,
        f"logs={prefixed_dir}",
        "policy=given",
        "policy.prefix=p_",
        "stream.enabled=true",
        "stream.batch_rows=700",
        "estimators=[ips,snips]",
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = app_cli.mlflow_runs(streamed, "evaluate")
    assert run.data.tags["mode"] == "fixed-stream"
    for name in ("ips", "snips"):
        assert run.data.metrics[f"{name}.value"] == pytest.approx(
            want.estimates[name].value, abs=1e-12
        )


def test_evaluate_app_table_of_the_loggers_own_distribution_is_on_policy(tmp_path, scenario):
    """A CSV table per (channel, last-viewed category, days since view) equal to the logger's
    own distribution: every importance weight is 1, so IPS is the mean logged reward (also
    streamed); and the estimates equal those of the logger's probabilities given in Python."""
    table = _rule_table(scenario)
    table.write_csv(tmp_path / "cells.csv")
    d = tmp_path / "decision_log"
    write_log_dir(
        d,
        scenario.data.frame,
        scenario.catalog,
        metadata={"features": default_feature_schema().to_dict()},
    )
    keys = ",".join(RULE_KEYS)
    proc = _cli(
        tmp_path,
        f"logs={d}",
        "policy=table",
        f"policy.table={tmp_path / 'cells.csv'}",
        f"policy.keys=[{keys}]",
        "estimators=[ips,snips,dr]",
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = app_cli.mlflow_runs(tmp_path, "evaluate")
    m = run.data.metrics
    mean_reward = float(scenario.data.reward.mean())
    assert abs(m["ips.value"] - mean_reward) < 1e-12
    assert abs(m["snips.value"] - mean_reward) < 1e-12
    data = scenario.data
    ests = make_estimators(["ips", "snips", "dr"], seed=1)
    own = FixedProbs(data.logging_probs).reset(data.problem_spec(), 1)
    want = evaluate_policy(data, own, ests, seed=1)
    for name, est in want.estimates.items():
        assert m[f"{name}.value"] == pytest.approx(est.value, abs=1e-12), name
        assert m[f"{name}.ci_high"] == pytest.approx(est.ci_high, abs=1e-12), name
    streamed = tmp_path / "streamed"
    proc = app_cli.run_app(
        "evaluate",
        streamed,
        f"logs={d}",
        "policy=table",
        f"policy.table={tmp_path / 'cells.csv'}",
        f"policy.keys=[{keys}]",
        "estimators=[ips]",
        "stream.enabled=true",
        "stream.batch_rows=1000",
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = app_cli.mlflow_runs(streamed, "evaluate")
    assert abs(run.data.metrics["ips.value"] - mean_reward) < 1e-12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["policy=table", "policy.keys=[segment,channel]"],
            "error: policy 'table': table '{table}': log rows whose cell is not in the table",
        ),
        (["policy=given"], "error: policy 'given' needs to know where the target's"),
    ],
)
def test_evaluate_app_bad_policy_input_stops_before_any_run(tmp_path, prefixed_dir, args, message):
    table = tmp_path / "cells.csv"
    pl.DataFrame({"segment": ["loyal"], "channel": ["email"]}).with_columns(
        pl.lit(1.0 / 12).alias(v)
        for v in pl.read_parquet(prefixed_dir / "catalog.parquet")["variant_id"]
    ).write_csv(table)
    if args[0] == "policy=table":
        args = [*args, f"policy.table={table}"]
    proc = _cli(tmp_path, f"logs={prefixed_dir}", *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = _errors(proc)
    assert len(errors) == 1 and errors[0].startswith(message.format(table=table)), proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
