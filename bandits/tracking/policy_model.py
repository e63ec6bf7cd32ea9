"""A trained policy as an MLflow model (pyfunc flavour).

The model's one artifact is a policy bundle (:mod:`bandits.deploy.bundle`: settings,
learned state, catalog, feature schema, exploration, project and model version); its
signature lists the context columns it reads (categorical → string, numeric → double) and
the decision columns it returns. Anywhere ``bandits`` is installed::

    model = mlflow.pyfunc.load_model(uri)
    model.predict(contexts, params={"seed": 7})   # pandas frame of context columns

returns one row per context: ``event_id``, ``action`` (variant id), ``propensity`` (exact),
``action_probs`` (the K probabilities, catalog order — the logged-data contract's name) and
``model_version`` — the same probabilities as the policy had in the run. Sampling is seeded
by the ``seed`` param (required: the same seed and rows give the same decisions);
``batch_id`` (optional) starts the event ids, else they start with a hash of the seed.

``log_policy_model`` logs it in the active run (``registered_model_name=`` also registers it
as a new version of a named policy); ``save_policy_model`` writes it to a folder;
``load_policy_model`` returns the :class:`~bandits.deploy.DeployedPolicy` behind any model
URI (``runs:/…``, ``models:/name/3``, a folder) for :func:`bandits.deploy.decide_file`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import polars as pl
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import DataType
from mlflow.types.schema import (
    AnyType,
    Array,
    ColSpec,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
)

from bandits.deploy.bundle import DeployedPolicy, load_bundle, save_bundle
from bandits.errors import ConfigError, DataError
from bandits.policies.base import Policy

ARTIFACT = "policy"
#: The model's code (MLflow "models from code": no pickled object in the model).
MODEL_CODE = (
    "import mlflow\n"
    "from bandits.tracking.policy_model import PolicyModel\n\n"
    "mlflow.models.set_model(PolicyModel())\n"
)
#: Packages the model needs besides ``bandits`` itself (pinned to the versions it was
#: saved with; ``bandits`` is not on a package index, so it is recorded in the metadata).
REQUIREMENTS = ("numpy", "polars", "pandas", "pyarrow", "numba", "vowpalwabbit", "mlflow")

__all__ = [
    "PolicyModel",
    "load_policy_model",
    "log_policy_model",
    "policy_signature",
    "save_policy_model",
]


def _requirements() -> list[str]:
    from importlib import metadata

    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def policy_signature(deployed: DeployedPolicy) -> ModelSignature:
    """Inputs: the policy's input columns (categorical features as string; numeric ones as
    any type, since integers and floats are both numbers to the feature schema while MLflow
    will not turn an integer column into a double one); outputs: the decision columns;
    params: ``seed`` (long, required at predict) and ``batch_id`` (string)."""
    categorical = {c.name for c in deployed.spec.features.categorical}
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(DataType.string, col) if col in categorical else ColSpec(AnyType(), col)
        for col in deployed.input_columns
    ]
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec(DataType.string, "event_id"),
        ColSpec(DataType.string, "action"),
        ColSpec(DataType.double, "propensity"),
        ColSpec(Array(DataType.double), "action_probs"),
        ColSpec(DataType.string, "model_version"),
    ]
    params = ParamSchema(
        [ParamSpec("seed", DataType.long, None), ParamSpec("batch_id", "string", "")]
    )
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs), params=params)


class PolicyModel(PythonModel):
    """The pyfunc wrapper of a policy bundle (see the module docstring)."""

    def load_context(self, context: Any) -> None:
        self._deployed = load_bundle(context.artifacts[ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Decisions for a frame of ``n`` contexts: ``event_id``, ``action``, ``propensity``,
        ``action_probs`` (list of K floats), ``model_version`` (``n`` rows, pandas)."""
        from bandits.deploy.decide import ACTION_PROBS, EVENT_ID, MODEL_VERSION, Decider

        params = dict(params or {})
        seed = params.get("seed")
        if seed is None:
            raise ConfigError(
                "predict needs params={'seed': <int>}: decisions are drawn with that seed "
                "(the same seed and rows give the same decisions)"
            )
        frame = (
            model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        )
        if frame.height == 0:
            raise DataError("predict got an empty frame (0 rows)")
        decider = Decider(self._deployed, seed=int(seed), batch=str(params.get("batch_id") or ""))
        out = decider.decide(frame)
        probs = out[ACTION_PROBS].to_numpy()
        result = pd.DataFrame(
            {
                EVENT_ID: out[EVENT_ID].to_numpy(),
                "action": out["action"].to_numpy(),
                "propensity": out["propensity"].to_numpy(),
                ACTION_PROBS: list(np.asarray(probs, dtype=np.float64)),
                MODEL_VERSION: out[MODEL_VERSION].to_numpy(),
            }
        )
        return result


def _model_kwargs(deployed: DeployedPolicy, tmp: str) -> dict[str, Any]:
    code = Path(tmp) / "policy_pyfunc.py"
    code.write_text(MODEL_CODE, encoding="utf-8")
    return {
        "python_model": str(code),
        "signature": policy_signature(deployed),
        "pip_requirements": _requirements(),
        "metadata": {
            "policy": deployed.name,
            "model_version": deployed.model_version,
            "project_version": deployed.manifest.get("project_version", "unknown"),
            "exploration": deployed.manifest.get("exploration", {}),
            "action_ids": list(deployed.action_ids),
            "input_columns": list(deployed.input_columns),
        },
    }


def save_policy_model(
    path: str | os.PathLike[str], policy: Policy, *, extra_columns: Sequence[str] = ()
) -> DeployedPolicy:
    """Write ``policy`` (bound, trained) as an MLflow pyfunc model into the new folder
    ``path``; returns what was saved. ``extra_columns``: context columns the policy reads
    by name beyond its feature schema."""
    with tempfile.TemporaryDirectory() as tmp:
        deployed = save_bundle(Path(tmp) / ARTIFACT, policy, extra_columns=extra_columns)
        mlflow.pyfunc.save_model(
            os.fspath(path),
            artifacts={ARTIFACT: str(Path(tmp) / ARTIFACT)},
            **_model_kwargs(deployed, tmp),
        )
    return deployed


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's chatter while a model is logged, kept off the app's console: the uv-project
    notices, the download progress bar and the "no input example" warning (the signature
    is given explicitly, so MLflow need not infer it from an example)."""
    loggers = [logging.getLogger(n) for n in ("mlflow.utils.uv_utils", "mlflow.models.model")]
    levels = [lg.level for lg in loggers]
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_LOG_UV_FILES", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    }
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        os.environ.update({k: "false" for k in saved})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def log_policy_model(
    policy: Policy,
    *,
    name: str = "policy",
    registered_model_name: str | None = None,
    extra_columns: Sequence[str] = (),
) -> tuple[str, DeployedPolicy]:
    """Log ``policy`` (bound, trained) as an MLflow model named ``name`` in the active run
    (``with bandits.tracking.run(...)``); with ``registered_model_name``, also register it
    as a new version of that model. Returns ``(model URI, what was saved)``; the run gets
    tags ``policy_model.uri`` and ``policy_model.version`` (the model version)."""
    with tempfile.TemporaryDirectory() as tmp:
        save_bundle(Path(tmp) / ARTIFACT, policy, extra_columns=extra_columns)
        return log_bundle_model(
            Path(tmp) / ARTIFACT, name=name, registered_model_name=registered_model_name
        )


def log_bundle_model(
    bundle: str | os.PathLike[str],
    *,
    name: str = "policy",
    registered_model_name: str | None = None,
    tag_prefix: str = "policy_model",
) -> tuple[str, DeployedPolicy]:
    """Log the bundle folder ``bundle`` (:func:`bandits.deploy.save_bundle`) as an MLflow
    model named ``name`` in the active run, as :func:`log_policy_model` does; the run gets
    tags ``<tag_prefix>.uri`` and ``<tag_prefix>.version``."""
    from bandits import tracking

    deployed = load_bundle(bundle)
    tracking.flush()  # queued background writes first: the model is logged synchronously
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        if Path(bundle).name != ARTIFACT:  # MLflow keeps the folder's own name
            bundle = shutil.copytree(bundle, Path(tmp) / ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name=name,
            artifacts={ARTIFACT: os.fspath(bundle)},
            registered_model_name=registered_model_name,
            **_model_kwargs(deployed, tmp),
        )
    mlflow.set_tags(
        {f"{tag_prefix}.uri": info.model_uri, f"{tag_prefix}.version": deployed.model_version}
    )
    return info.model_uri, deployed


def load_policy_model(uri: str) -> DeployedPolicy:
    """The :class:`DeployedPolicy` of the pyfunc model at ``uri`` (``runs:/<id>/policy``,
    ``models:/<name>/<version>``, ``models:/<name>@<alias>``, a local folder): its
    artifacts are downloaded and the bundle loaded (no pyfunc wrapper in between).

    Raises:
        ConfigError: one line when the URI names no model, or a model that is not a policy.
    """
    if "://" not in uri and ":" not in uri.split("/", 1)[0]:  # a local folder
        if not Path(uri).expanduser().is_dir():
            raise ConfigError(f"model={uri}: no such folder")
        local = str(Path(uri).expanduser().resolve())
    else:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
        except Exception as exc:  # MLflow raises many types: all mean "no such model"
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"model={uri}: cannot load it ({text[:200]})") from None
    bundle = Path(local) / "artifacts" / ARTIFACT
    if not (bundle / "policy.json").is_file():
        raise ConfigError(f"model={uri}: not a policy model (no artifacts/{ARTIFACT}/policy.json)")
    return load_bundle(bundle)
