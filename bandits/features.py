"""Context featurisation: raw context columns -> a dense design matrix for linear policies.

A :class:`FeatureSchema` is fixed data (levels of each categorical column, centre and scale of
each numeric one), so the same context always maps to the same vector — in simulation, on a
log read months later, and across partitions of a log. Schemas serialise to plain dicts.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bandits.errors import DataError, first_rows


@dataclass(frozen=True)
class CategoricalFeature:
    """One-hot encoded column with a fixed list of ``levels``."""

    name: str
    levels: tuple[str, ...]


@dataclass(frozen=True)
class NumericFeature:
    """Numeric column mapped to ``(log1p(x) if log else x) - center) / scale``."""

    name: str
    center: float = 0.0
    scale: float = 1.0
    log: bool = False


@dataclass(frozen=True)
class FeatureSchema:
    """Maps a context frame of ``n`` rows to ``X`` of shape ``(n, dim)`` (float64, C order).

    Layout: ``[1 (intercept) | one-hot blocks in order | numeric columns in order]``.
    """

    categorical: tuple[CategoricalFeature, ...] = ()
    numeric: tuple[NumericFeature, ...] = ()
    intercept: bool = True
    _offsets: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets, pos = [], int(self.intercept)
        for cat in self.categorical:
            offsets.append(pos)
            pos += len(cat.levels)
        object.__setattr__(self, "_offsets", tuple(offsets))

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the raw context columns the schema reads."""
        return tuple(c.name for c in self.categorical) + tuple(c.name for c in self.numeric)

    @property
    def dim(self) -> int:
        return (
            int(self.intercept) + sum(len(c.levels) for c in self.categorical) + len(self.numeric)
        )

    def feature_names(self) -> list[str]:
        names = ["intercept"] if self.intercept else []
        for cat in self.categorical:
            names += [f"{cat.name}={lvl}" for lvl in cat.levels]
        return names + [c.name for c in self.numeric]

    def codes(self, frame: pl.DataFrame, name: str) -> np.ndarray:
        """Integer codes ``(n,)`` of categorical column ``name`` (DataError on unknown levels)."""
        cat = next(c for c in self.categorical if c.name == name)
        return _category_codes(frame, cat)

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """Design matrix ``X`` of shape ``(n, dim)`` for the rows of ``frame``."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"context column(s) {', '.join(missing)} needed by the policy's features "
                f"are missing (present: {', '.join(frame.columns)})"
            )
        n = frame.height
        codes = np.empty((n, len(self.categorical)), dtype=np.int64, order="F")
        for j, cat in enumerate(self.categorical):
            codes[:, j] = _category_codes(frame, cat)
        values = np.empty((n, len(self.numeric)), dtype=np.float64, order="F")
        for j, num in enumerate(self.numeric):
            values[:, j] = _numeric(frame, num.name)
        return self.design(codes, values)

    def design(self, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``X (n, dim)`` from checked inputs: ``codes (n, C)`` the level index of each
        categorical column (in :attr:`categorical` order) and ``values (n, M)`` the finite
        raw numeric columns (in :attr:`numeric` order). Row ``i``:
        ``[1 | one_hot(codes[i, c]) for each c | ((log1p(v) if log else v) - center) / scale]``.
        What :meth:`transform` computes from a frame; a caller that already holds the codes
        (the HTTP service's one-row requests) calls it directly."""
        n = codes.shape[0]
        X = np.zeros((n, self.dim), dtype=np.float64)
        if self.intercept:
            X[:, 0] = 1.0
        rows = np.arange(n)
        for j, off in enumerate(self._offsets):
            X[rows, off + codes[:, j]] = 1.0
        base = self.dim - len(self.numeric)
        for j, num in enumerate(self.numeric):
            x = values[:, j]
            X[:, base + j] = ((np.log1p(x) if num.log else x) - num.center) / num.scale
        return X

    @functools.cached_property
    def level_codes(self) -> dict[str, dict[str, int]]:
        """``{column: {level: code}}`` of the categorical columns (the codes of
        :meth:`design`)."""
        return {c.name: {lvl: i for i, lvl in enumerate(c.levels)} for c in self.categorical}

    def to_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "categorical": {c.name: list(c.levels) for c in self.categorical},
            "numeric": {
                c.name: {"center": c.center, "scale": c.scale, "log": c.log} for c in self.numeric
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        return cls(
            categorical=tuple(
                CategoricalFeature(k, tuple(str(v) for v in lv))
                for k, lv in dict(data.get("categorical", {})).items()
            ),
            numeric=tuple(
                NumericFeature(k, **dict(v)) for k, v in dict(data.get("numeric", {})).items()
            ),
            intercept=bool(data.get("intercept", True)),
        )

    def select(self, columns: Sequence[str]) -> FeatureSchema:
        """A schema restricted to ``columns`` (ConfigError-free: unknown names raise DataError)."""
        unknown = sorted(set(columns) - set(self.columns))
        if unknown:
            raise DataError(
                f"unknown feature column(s) {', '.join(unknown)} "
                f"(available: {', '.join(self.columns)})"
            )
        keep = set(columns)
        return FeatureSchema(
            categorical=tuple(c for c in self.categorical if c.name in keep),
            numeric=tuple(c for c in self.numeric if c.name in keep),
            intercept=self.intercept,
        )

    @classmethod
    def infer(
        cls, frame: pl.DataFrame, columns: Sequence[str], max_levels: int = 200
    ) -> FeatureSchema:
        """Infer a schema from data: string/categorical/boolean columns become one-hot
        (levels sorted), numeric columns are standardised by their mean and std."""
        cats, nums = [], []
        for name in columns:
            s = frame[name]
            if s.dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(s.dtype, pl.Enum):
                levels = tuple(sorted(str(v) for v in s.cast(pl.String).unique().drop_nulls()))
                if len(levels) > max_levels:
                    raise DataError(
                        f"context column '{name}' has {len(levels)} distinct values "
                        f"(more than {max_levels}): pass it as numeric or drop it"
                    )
                cats.append(CategoricalFeature(name, levels))
            elif s.dtype.is_numeric():
                x = s.cast(pl.Float64).to_numpy()
                sd = float(np.nanstd(x))
                nums.append(NumericFeature(name, float(np.nanmean(x)), sd if sd > 0 else 1.0))
            else:
                raise DataError(f"context column '{name}' has unsupported type {s.dtype}")
        return cls(categorical=tuple(cats), numeric=tuple(nums))


def _category_codes(frame: pl.DataFrame, cat: CategoricalFeature) -> np.ndarray:
    s = frame[cat.name]
    if isinstance(s.dtype, pl.Enum) and tuple(s.dtype.categories.to_list()) == cat.levels:
        codes = s.to_physical().to_numpy()
        if s.null_count():
            raise DataError(
                f"context column '{cat.name}' has nulls: {first_rows(s.is_null().to_numpy())}"
            )
        return codes.astype(np.int64, copy=False)
    strings = s.cast(pl.String)
    enum = strings.cast(pl.Enum(list(cat.levels)), strict=False)
    bad = enum.is_null().to_numpy()
    if bad.any():
        values = strings.filter(pl.Series(bad)).head(3).to_list()
        raise DataError(
            f"context column '{cat.name}' has values outside its known levels "
            f"{list(cat.levels)}: {first_rows(bad)}, e.g. {values}"
        )
    return enum.to_physical().to_numpy().astype(np.int64, copy=False)


def _numeric(frame: pl.DataFrame, name: str) -> np.ndarray:
    s = frame[name]
    if not s.dtype.is_numeric():
        raise DataError(f"context column '{name}' must be numeric, got {s.dtype}")
    x = s.cast(pl.Float64).to_numpy()
    bad = ~np.isfinite(x)
    if bad.any():
        raise DataError(f"context column '{name}' has null/NaN/inf values: {first_rows(bad)}")
    return x
