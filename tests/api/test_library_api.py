"""The library's experiment API (``bandits.run_simulation`` / ``evaluate_log`` /
``compare_policies``): typed results, the simulated log as LoggedData and as a log
directory, the comparison's level, estimand and method text derived from its settings,
and the library importing neither Hydra nor MLflow."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import bandits
from bandits.compare import BETTER, INCONCLUSIVE, WORSE, percent
from bandits.errors import ConfigError
from bandits.experiment import (
    ComparisonResult,
    EvaluationResult,
    LoggedSource,
    SimulatedSource,
    SimulationResult,
    simulation_seeds,
)
from bandits.simulate import AudienceSettings, Environment, run_online

SMALL = AudienceSettings(name="small", n_users=2000, impressions_per_day=500)
VERDICTS = {BETTER, WORSE, INCONCLUSIVE}


@pytest.fixture(scope="module")
def simulated() -> SimulationResult:
    return bandits.run_simulation(bandits.make_policy("uniform"), SMALL, 2000, seed=3)


def ladder() -> dict:
    return {
        "retargeting": bandits.make_policy("retargeting"),
        "linucb": bandits.make_policy("linucb"),
        "segments": bandits.make_policy("segment_ts"),
    }


@pytest.fixture(scope="module")
def compared() -> ComparisonResult:
    source = SimulatedSource(SMALL, rounds=1000, seed=5, replications=3, eval_rounds=0)
    return bandits.compare_policies(source, ladder(), baseline="retargeting", focus=["linucb"])


def test_simulation_is_typed_seeded_like_the_app_and_has_no_user_key(simulated):
    assert isinstance(simulated, SimulationResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        simulated.rounds = 1  # type: ignore[misc]
    env_ss, policy_ss = simulation_seeds(3)
    direct = run_online(Environment(SMALL, env_ss), bandits.make_policy("uniform"), 2000, policy_ss)
    assert simulated.summary == direct.summary()  # the one seed convention, same numbers
    assert simulated.log is not None and "user_key" not in simulated.log.columns
    assert "user_key" in direct.log.columns  # the simulator has it; the result drops it
    assert simulated.log.height == direct.log.height
    assert simulated.metadata["features"] == simulated.features.to_dict()
    assert simulated.curves(100)["step"].to_list()[-1] == 2000


def test_written_log_directory_loads_the_same_rows(simulated, tmp_path):
    directory = simulated.write_log_dir(tmp_path / "decision_log")
    loaded = bandits.load_log(directory)
    direct = simulated.to_logged_data()
    assert loaded.n == direct.n == simulated.log.height
    assert loaded.action_ids == direct.action_ids
    np.testing.assert_array_equal(loaded.action, direct.action)
    np.testing.assert_array_equal(loaded.reward, direct.reward)
    np.testing.assert_array_equal(loaded.propensity, direct.propensity)
    assert loaded.context_columns == direct.context_columns
    assert loaded.features.to_dict() == simulated.features.to_dict()
    assert loaded.frame.equals(direct.frame)


def test_a_streamed_simulation_says_it_kept_no_log():
    rows: list[pl.DataFrame] = []
    result = bandits.run_simulation(
        bandits.make_policy("uniform"), SMALL, 600, seed=1, keep_log=False, on_log=rows.append
    )
    assert result.log is None and sum(r.height for r in rows) > 0
    assert all("user_key" not in r.columns for r in rows)
    with pytest.raises(ValueError, match="keep_log=True"):
        result.to_logged_data()


def test_the_simulated_log_goes_into_the_offline_evaluator(simulated):
    data = simulated.to_logged_data()
    result = bandits.evaluate_log(data, bandits.make_policy("retargeting"), estimators=["ips"])
    assert isinstance(result, EvaluationResult) and result.mode == "fixed"
    ips = result.evaluation.estimates["ips"]
    # IPS by hand on the uniform log: mean of pi(a_i | x_i) / p_i * r_i
    policy = bandits.make_policy("retargeting")
    policy.reset(data.problem_spec(), np.random.SeedSequence(1).spawn(2)[0])
    pi = policy.action_probs(data.problem_spec().contexts(data.frame))
    by_hand = np.mean(pi[np.arange(data.n), data.action] / data.propensity * data.reward)
    assert ips.value == pytest.approx(by_hand, rel=1e-12)
    truth = np.asarray(data.frame["true_expected_reward"].to_list())
    assert result.evaluation.true_value == pytest.approx(float((pi * truth).sum(1).mean()))
    assert result.metrics()["ips.value"] == ips.value
    assert any(line.startswith("  ips") for line in result.lines())
    learned = bandits.evaluate_log(data, bandits.make_policy("linucb"), estimators=["ips"])
    assert learned.mode == "train" and learned.evaluated.n < data.n


def test_comparison_carries_level_estimand_and_per_replication_numbers(compared):
    assert isinstance(compared, ComparisonResult)
    assert compared.alpha == 0.05 and compared.level == pytest.approx(0.95)
    assert compared.estimand.startswith("expected reward per impression of each policy")
    assert "1,000-impression campaign" in compared.estimand
    assert "over 3 independent runs" in compared.estimand
    assert set(compared.verdicts) == {"linucb", "segments"}
    assert set(compared.verdicts.values()) <= VERDICTS
    assert {(c.policy, c.baseline) for c in compared.pairs} == {("segments", "linucb")}
    for c in (*compared.comparisons, *compared.pairs):
        assert c.ci_level >= compared.level and c.unit == "replications"
        assert c.ci_low <= c.diff <= c.ci_high
    frame = compared.per_replication()
    assert frame.height == 3 * 3
    for label, rung in compared.rungs.items():
        values = frame.filter(pl.col("rung") == label)["value"]
        assert rung.metrics["value"] == pytest.approx(values.mean())
    linucb = next(c for c in compared.comparisons if c.policy == "linucb")
    diffs = frame.pivot(on="rung", index="replication", values="value")
    exact = (diffs["linucb"] - diffs["retargeting"]).to_numpy()
    assert linucb.diff == pytest.approx(exact.mean())
    assert linucb.stderr == pytest.approx(exact.std(ddof=1) / math.sqrt(3))
    notes = " ".join(compared.method_notes)
    assert "alpha = 0.05" in notes and "80% power" in notes
    assert compared.best_rung in compared.rungs and compared.guardrails == {}


def test_a_non_default_alpha_changes_every_printed_label():
    source = SimulatedSource(SMALL, rounds=1000, seed=5, replications=3, eval_rounds=0)
    result = bandits.compare_policies(
        source,
        ladder(),
        baseline="retargeting",
        alpha=0.2,
        power=0.9,
        guardrail=bandits.Guardrail(max_extra_per_1000=1.0),
    )
    # three pairs at alpha 0.2: Holm levels 1 - 0.2/k (80%, 90%, 93.3%); two Bonferroni
    # guardrail intervals at 90% — 95% is not a level this comparison uses
    levels = {c.ci_level for c in (*result.comparisons, *result.pairs)}
    assert levels <= {1 - 0.2 / k for k in (1, 2, 3)}
    printed = "\n".join(result.verdict_lines())
    for c in (*result.comparisons, *result.pairs):
        assert f"{percent(c.ci_level)} Holm-consistent CI" in printed
    assert [g.level for g in result.guardrails.values()] == pytest.approx([0.9, 0.9])
    assert "(90% CI" in printed
    words = printed + " ".join(result.method_notes)
    assert "95%" not in words
    assert "alpha = 0.2" in words and "90% power" in words


def test_a_logged_source_compares_on_the_same_rows(simulated):
    data = simulated.to_logged_data()
    source = LoggedSource(data, seed=2)
    kept, left_out = source.check(ladder(), "retargeting")
    assert set(kept) == set(ladder()) and left_out == {}
    result = bandits.compare_policies(source, ladder(), baseline="retargeting")
    assert result.source == "logs" and result.logged is not None
    assert result.unit == "logged rows" and result.n == result.logged.test.n < data.n
    assert all(c.n == result.n and c.unit == "logged rows" for c in result.comparisons)
    assert f"its {result.n:,} evaluation rows with DR terms" in result.estimand
    assert "DR estimator" in result.method_notes[0]
    assert set(result.logged.estimates) == set(ladder())


def test_the_ladder_must_hold_its_baseline():
    with pytest.raises(ConfigError, match="not a ladder rung"):
        bandits.compare_policies(
            SimulatedSource(SMALL, rounds=100, replications=2), ladder(), baseline="nope"
        )


def test_the_library_imports_neither_hydra_nor_mlflow():
    code = (
        "import sys, bandits\n"
        "bandits.compare_policies, bandits.run_simulation, bandits.evaluate_log\n"
        "import bandits.report_html\n"
        "print(sorted(m for m in ('hydra', 'omegaconf', 'mlflow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_readme_quick_start_runs(tmp_path, capsys):
    """The README's "From Python: the library" block, run as written on a smaller campaign
    (fewer rounds and replications, the small audience, one process)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### From Python: the library", 1)[1]
    block = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "import experiments" not in block and "hydra" not in block
    small = (
        block.replace("20_000", "1_000")
        .replace("replications=20", "replications=2")
        .replace("n_jobs=2", "n_jobs=1")
        .replace("bandits.AudienceSettings()", "bandits.AudienceSettings(n_users=2000)")
    )
    assert small.count("1_000") == 2 and "replications=2" in small
    exec(compile(small, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.count("VERDICT") == 2 and "estimand:" in printed
    assert "ips" in printed and "evidence:" in printed
