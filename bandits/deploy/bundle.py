"""A trained policy as files: its settings, learned state, catalog and feature schema.

A *policy bundle* is a directory anyone can load without MLflow (the MLflow model of
:mod:`bandits.tracking.policy_model` wraps one as its artifact)::

    policy.json      manifest: format, policy name and settings, exploration, feature
                     schema, variant ids, input columns, project version, model version,
                     and the scalar part of the learned state
    state.npz        the array part of the learned state (``np.savez``, no pickles)
    state_<key>.bin  byte strings of the state (e.g. Vowpal Wabbit's saved model)
    frame_<key>.parquet  tables in the state or settings (e.g. the ``table`` policy's cells)
    catalog.parquet  the action catalog (``variant_id`` first, action-index order)

Loading rebuilds the policy from its name and settings (:func:`bandits.policies.make_policy`),
binds it to the saved catalog and schema (``reset``) and restores the state
(``set_state``), so it gives the same probabilities as the policy that was saved.

``model_version`` is ``<policy name>-<12 hex digits>``: SHA-256 over the manifest, the state
and the catalog, so the same trained policy has the same version wherever it is loaded from
(a run's artifact, a registry version, a copied folder) and any change of state changes it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bandits.errors import ConfigError, DataError
from bandits.features import FeatureSchema
from bandits.policies.base import Contexts, Policy, ProblemSpec

BUNDLE_FORMAT = 1
MANIFEST = "policy.json"
STATE_ARRAYS = "state.npz"
CATALOG = "catalog.parquet"
_TUPLE = "__tuple__"
_ARRAY = "__array__"
_BYTES = "__bytes__"
_FRAME = "__frame__"

__all__ = [
    "BUNDLE_FORMAT",
    "DeployedPolicy",
    "load_bundle",
    "project_version",
    "save_bundle",
]


def project_version() -> str:
    """The installed ``bandits`` distribution's version (``"unknown"`` if not installed)."""
    try:
        return importlib_metadata.version("bandits")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class DeployedPolicy:
    """A policy bound to its problem, as loaded from a bundle (or wrapped by
    :meth:`from_policy`), ready to decide.

    Attributes:
        policy: the bound policy (``reset`` done, learned state restored).
        spec: its problem: ``K`` variant ids, the catalog, the feature schema.
        model_version: ``<policy name>-<12 hex digits>`` (see the module docstring).
        input_columns: the context columns the policy reads: the feature schema's columns
            plus any the policy reads by name (given at save time). Only these are read
            from an audience and written to a decision file.
        manifest: the bundle's manifest (settings, exploration, project version, …).
    """

    policy: Policy
    spec: ProblemSpec
    model_version: str
    input_columns: tuple[str, ...]
    manifest: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.policy.name)

    @property
    def action_ids(self) -> tuple[str, ...]:
        return self.spec.action_ids

    def columns_for(self, available: Sequence[str]) -> tuple[str, ...]:
        """Columns to read from a frame whose columns are ``available``: the input columns
        plus the columns holding the policy's own probabilities, if it reads any
        (:meth:`Policy.target_columns`, e.g. ``given``)."""
        extra = tuple(self.policy.target_columns(list(available)))
        return tuple(dict.fromkeys([*self.input_columns, *extra]))

    def probs(self, frame: pl.DataFrame) -> np.ndarray:
        """The policy's probabilities ``(n, K)`` for the ``n`` rows of ``frame`` (epsilon
        included; no learning, no sampling)."""
        return self.policy.action_probs(self.contexts(frame))

    def contexts(self, frame: pl.DataFrame) -> Contexts:
        return self.spec.contexts(frame)

    @classmethod
    def from_policy(
        cls, policy: Policy, *, extra_columns: Sequence[str] = (), model_version: str = ""
    ) -> DeployedPolicy:
        """Wrap a bound policy in memory (no files); ``model_version`` defaults to the
        digest a bundle of it would have."""
        manifest, stores = _manifest(policy, extra_columns)
        version = model_version or _version(manifest, stores, policy.spec_.catalog)
        manifest["model_version"] = version
        return cls(
            policy=policy,
            spec=policy.spec_,
            model_version=version,
            input_columns=tuple(manifest["input_columns"]),
            manifest=manifest,
        )


# ----------------------------------------------------------------------- state encoding


Stores = tuple[dict[str, np.ndarray], dict[str, bytes], dict[str, pl.DataFrame]]


def _encode(value: Any, key: str, stores: Stores) -> Any:
    """``value`` as JSON, with arrays, byte strings and frames moved to ``stores``."""
    arrays, blobs, frames = stores
    if isinstance(value, pl.DataFrame):
        frames[key] = value
        return {_FRAME: key}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ConfigError(
                f"cannot save the policy: state '{key}' is an object array (not portable)"
            )
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, bytes | bytearray):
        blobs[key] = bytes(value)
        return {_BYTES: key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{key}.{i}", stores) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}.{i}", stores) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ConfigError(f"cannot save the policy: state '{key}' has non-text keys")
        return {k: _encode(v, f"{key}.{k}", stores) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(
        f"cannot save the policy: state '{key}' has type {type(value).__name__} "
        "(arrays, bytes, numbers, text, tuples, lists and dicts are saved)"
    )


def _decode(value: Any, stores: Stores) -> Any:
    arrays, blobs, frames = stores
    if isinstance(value, dict):
        if set(value) == {_FRAME}:
            return frames[value[_FRAME]]
        if set(value) == {_ARRAY}:
            return np.array(arrays[value[_ARRAY]])
        if set(value) == {_BYTES}:
            return blobs[value[_BYTES]]
        if set(value) == {_TUPLE}:
            return tuple(_decode(v, stores) for v in value[_TUPLE])
        return {k: _decode(v, stores) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, stores) for v in value]
    return value


def _settings_from_json(data: Mapping[str, Any], stores: Stores) -> dict[str, Any]:
    return {k: _decode(v, stores) for k, v in data.items()}


def _exploration(policy: Policy) -> dict[str, Any]:
    """The settings that decide how much the policy explores, and how its probabilities are
    computed."""
    params = policy.get_params()
    keys = ("epsilon", "alpha", "v", "explorer", "explore_param", "c")
    out = {k: params[k] for k in keys if k in params}
    out["probabilities"] = type(policy).probabilities
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in out.items()}


def _manifest(policy: Policy, extra_columns: Sequence[str]) -> tuple[dict[str, Any], Stores]:
    if not hasattr(policy, "spec_"):
        raise ConfigError(
            f"cannot save policy '{policy.name}': it is not bound to a problem (call reset "
            "and train it first)"
        )
    spec: ProblemSpec = policy.spec_
    stores: Stores = ({}, {}, {})
    state = {k: _encode(v, k, stores) for k, v in policy.get_state().items()}
    settings = {k: _encode(v, f"setting.{k}", stores) for k, v in policy.get_params().items()}
    inputs = tuple(dict.fromkeys([*spec.features.columns, *extra_columns]))
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "policy": policy.name,
        "settings": settings,
        "exploration": _exploration(policy),
        "features": spec.features.to_dict(),
        "action_ids": list(spec.action_ids),
        "input_columns": list(inputs),
        "project_version": project_version(),
        "state": state,
    }
    return manifest, stores


def _version(manifest: Mapping[str, Any], stores: Stores, catalog: pl.DataFrame) -> str:
    arrays, blobs, frames = stores
    h = hashlib.sha256()
    body = {k: v for k, v in manifest.items() if k not in ("model_version", "project_version")}
    h.update(json.dumps(body, sort_keys=True).encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    for key in sorted(blobs):
        h.update(key.encode())
        h.update(blobs[key])
    for key, frame in [*sorted(frames.items()), ("catalog", catalog)]:
        buf = io.BytesIO()
        frame.write_csv(buf)
        h.update(f"{key}:{frame.schema}".encode())
        h.update(buf.getvalue())
    return f"{manifest['policy']}-{h.hexdigest()[:12]}"


# ----------------------------------------------------------------------- save / load


def save_bundle(
    directory: str | os.PathLike[str],
    policy: Policy,
    *,
    extra_columns: Sequence[str] = (),
) -> DeployedPolicy:
    """Write a bound (trained) ``policy`` as a bundle into ``directory`` (created; existing
    bundle files are replaced) and return it as a :class:`DeployedPolicy`.

    ``extra_columns``: context columns the policy reads by name beyond its feature schema.

    Raises:
        ConfigError: the policy is not bound, or its state holds something that is not
            arrays, bytes, numbers, text, tuples, lists or dicts.
    """
    manifest, stores = _manifest(policy, extra_columns)
    arrays, blobs, frames = stores
    catalog = policy.spec_.catalog
    manifest["model_version"] = _version(manifest, stores, catalog)
    d = Path(os.fspath(directory))
    d.mkdir(parents=True, exist_ok=True)
    catalog.write_parquet(d / CATALOG)
    np.savez(d / STATE_ARRAYS, **arrays)  # type: ignore[arg-type]
    for key, data in blobs.items():
        (d / f"state_{key}.bin").write_bytes(data)
    for key, frame in frames.items():
        frame.write_parquet(d / f"frame_{key}.parquet")
    (d / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")  # last
    return DeployedPolicy(
        policy=policy,
        spec=policy.spec_,
        model_version=manifest["model_version"],
        input_columns=tuple(manifest["input_columns"]),
        manifest=manifest,
    )


def load_bundle(directory: str | os.PathLike[str]) -> DeployedPolicy:
    """Load a bundle written by :func:`save_bundle`: the policy rebuilt from its settings,
    bound to the saved catalog and feature schema, its learned state restored.

    Raises:
        DataError: the directory is not a bundle (no ``policy.json``), or a file is missing
            or of an unknown format.
    """
    from bandits.policies import make_policy

    d = Path(os.fspath(directory))
    path = d / MANIFEST
    if not path.is_file():
        raise DataError(f"'{d}' is not a saved policy: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read '{path}': {exc}") from None
    if manifest.get("format") != BUNDLE_FORMAT:
        raise DataError(
            f"'{path}': unknown policy bundle format {manifest.get('format')!r} "
            f"(this version reads {BUNDLE_FORMAT})"
        )
    try:
        catalog = pl.read_parquet(d / CATALOG)
        with np.load(d / STATE_ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        blobs = {p.name[len("state_") : -4]: p.read_bytes() for p in d.glob("state_*.bin")}
        frames = {p.name[len("frame_") : -8]: pl.read_parquet(p) for p in d.glob("frame_*.parquet")}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the saved policy in '{d}': {exc}") from None
    stores: Stores = (arrays, blobs, frames)
    spec = ProblemSpec(
        action_ids=tuple(manifest["action_ids"]),
        catalog=catalog,
        features=FeatureSchema.from_dict(manifest["features"]),
    )
    policy = make_policy(manifest["policy"], _settings_from_json(manifest["settings"], stores))
    policy.reset(spec, 0)  # the seed only drives the policy's own sampling, unused here
    policy.set_state({k: _decode(v, stores) for k, v in manifest["state"].items()})
    return DeployedPolicy(
        policy=policy,
        spec=spec,
        model_version=str(manifest["model_version"]),
        input_columns=tuple(manifest["input_columns"]),
        manifest=manifest,
    )
