"""`bandits.tracking`: background logging keeps every call, in order, fails the run when a
queued call fails, and never leaves a partial artifact or a RUNNING run."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

mlflow = pytest.importorskip("mlflow")

from bandits import tracking  # noqa: E402


@pytest.fixture
def store(tmp_path):
    uri = tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _frame(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "round": np.arange(n, dtype=np.int64) + 1000 * seed,
            "weather": pl.Series(
                rng.choice(["sunny", "rain"], n), dtype=pl.Enum(["sunny", "rain", "snow"])
            ),
            "reward": rng.random(n),
            "action_probs": pl.Series(rng.random((n, 3)), dtype=pl.Array(pl.Float64, 3)),
        }
    )


def _artifact(run_id: str, path: str) -> str:
    return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)


@pytest.mark.parametrize("background", [False, True])
def test_everything_logged_lands_in_the_run(store, background):
    from matplotlib.figure import Figure

    parts = [_frame(n, i) for i, n in enumerate([70, 0, 130, 5])]
    with tracking.run("t", "r", background=background) as run_id:
        tracking.log_params({"a": {"b": 1, "c": [1, 2]}, "long": "x" * 7000})
        tracking.log_tags({"kind": "test"})
        tracking.log_text("hello: 1\n", "config.yaml")
        stream = tracking.ParquetArtifact("logs/log.parquet", row_group_rows=100)
        for part in parts:
            stream.write(part)
        stream.close()
        tracking.log_metric_series(pl.DataFrame({"step": [1, 2, 3], "m": [0.1, np.nan, 0.3]}))
        tracking.log_metrics({"final": 2.5, "skipped": float("inf")})
        tracking.log_dict({"x": 1}, "summary.json")
        tracking.log_dict({"y": [1, 2]}, "meta.yaml")
        tracking.log_parquet(parts[0], "logs/first.parquet")
        fig = Figure()
        fig.subplots().plot([0, 1], [1, 0])
        tracking.log_figure(fig, "plots/p.png")
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["a.b"] == "1" and run.data.params["a.c"] == "[1, 2]"
    assert run.data.params["long"].endswith("…[truncated]")
    assert run.data.tags["kind"] == "test"
    assert run.data.metrics["final"] == 2.5 and "skipped" not in run.data.metrics
    history = mlflow.MlflowClient().get_metric_history(run_id, "m")
    assert [(h.step, h.value) for h in history] == [(1, 0.1), (3, 0.3)]  # NaN skipped
    streamed = pl.read_parquet(_artifact(run_id, "logs/log.parquet"))
    assert streamed.equals(pl.concat(parts))
    assert streamed.schema == parts[0].schema  # Enum and Array dtypes survive
    assert pl.read_parquet(_artifact(run_id, "logs/first.parquet")).equals(parts[0])
    with open(_artifact(run_id, "summary.json")) as fh:
        assert json.load(fh) == {"x": 1}
    with open(_artifact(run_id, "meta.yaml")) as fh:
        assert fh.read() == "y:\n- 1\n- 2\n"
    with open(_artifact(run_id, "config.yaml")) as fh:
        assert fh.read() == "hello: 1\n"
    with open(_artifact(run_id, "plots/p.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_failing_background_call_fails_the_run(store):
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        with tracking.run("t", "r", background=True) as run_id:
            tracking.log_metric_series(pl.DataFrame({"no_step": [1.0]}))  # fails in the worker
            tracking.log_metrics({"after": 1.0})
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED"
    assert mlflow.active_run() is None


def test_an_error_in_the_block_uploads_no_partial_artifact(store, tmp_path):
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("bandits-artifact-*"))
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.run("t", "r", background=True) as run_id:
            stream = tracking.ParquetArtifact("logs/log.parquet", row_group_rows=10)
            stream.write(_frame(50, 1))
            raise RuntimeError("boom")
    client = mlflow.MlflowClient()
    assert client.get_run(run_id).info.status == "FAILED"
    assert client.list_artifacts(run_id, "logs") == []
    assert set(Path(tempfile.gettempdir()).glob("bandits-artifact-*")) == before


def test_flush_makes_queued_calls_visible_inside_the_run(store):
    with tracking.run("t", "r", background=True) as run_id:
        tracking.log_metrics({"early": 1.0})
        tracking.flush()
        assert mlflow.MlflowClient().get_run(run_id).data.metrics["early"] == 1.0
        tracking.log_metrics({"late": 2.0})
    assert mlflow.MlflowClient().get_run(run_id).data.metrics == {"early": 1.0, "late": 2.0}


def test_a_synchronous_child_inside_a_background_parent_logs_to_itself(store):
    client = mlflow.MlflowClient()
    with tracking.run("t", "parent", background=True) as parent_id:
        tracking.log_metrics({"p": 1.0})
        with tracking.run("t", "child", parent_run_id=parent_id) as child_id:
            tracking.log_metrics({"c": 2.0})
            # synchronous: visible at once, in the child only
            assert client.get_run(child_id).data.metrics == {"c": 2.0}
        assert client.get_run(child_id).info.status == "FINISHED"
    assert client.get_run(parent_id).data.metrics == {"p": 1.0}
    assert client.get_run(parent_id).info.status == "FINISHED"


def test_logging_outside_a_run_is_a_clear_error(store):
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        tracking.log_metrics({"x": 1.0})


def test_a_signal_while_the_run_is_created_ends_it_killed(store, monkeypatch):
    """Ctrl-C that arrives inside ``mlflow.start_run`` (the run exists, the block has not
    begun) is held until the block is set up, then ends the run KILLED."""
    import os
    import signal

    real = mlflow.start_run

    def start_then_ctrl_c(*args, **kwargs):
        active = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: still in here
        return active

    monkeypatch.setattr(mlflow, "start_run", start_then_ctrl_c)
    body_ran = []
    with pytest.raises(KeyboardInterrupt):
        with tracking.run("t", "r"):
            body_ran.append(True)
    (run,) = mlflow.search_runs(experiment_names=["t"], output_format="list")
    assert run.info.status == "KILLED"
    assert not body_ran  # the interrupt came before the block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_an_interrupt_swallowed_by_a_callback_is_delivered_again(store, capsys):
    """A KeyboardInterrupt raised inside a C extension's callback is swallowed there (the
    unraisable hook); the run's handler delivers the signal again, so the run still ends
    KILLED, and nothing is printed."""
    import signal
    import sys
    import time
    import types

    hook = sys.unraisablehook
    with pytest.raises(KeyboardInterrupt):
        with tracking.run("t", "r") as run_id:
            tracking._signalled = True  # as on_signal sets it before raising
            sys.unraisablehook(
                types.SimpleNamespace(
                    exc_type=KeyboardInterrupt,
                    exc_value=KeyboardInterrupt("signal SIGINT"),
                    exc_traceback=None,
                    err_msg="Exception ignored in",
                    object=None,
                )
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
    assert mlflow.MlflowClient().get_run(run_id).info.status == "KILLED"
    assert "Traceback" not in capsys.readouterr().err
    assert sys.unraisablehook is hook  # restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
