"""The catalog of message variants (the bandit's actions) and their features.

Each variant has a product ``category`` (or ``"last_viewed"`` for a dynamic retargeting
variant, whose category is the one the user last browsed), a ``tone``, a ``discount`` (percent),
whether it ``mentions_last_viewed`` (retargeting), how many ``personal_dims`` of personal data it
visibly uses (0 = generic, 1 = first name, 2 = browsing history, ...) and which channels it
suits (``suits_email``, ``suits_push``, ``suits_sms``, ``suits_web``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from bandits.errors import ConfigError
from bandits.simulate.vocab import CATEGORIES, CHANNELS, TONES

DYNAMIC_CATEGORY = "last_viewed"

CATALOG_SCHEMA: dict[str, Any] = {
    "variant_id": pl.String,
    "category": pl.String,
    "tone": pl.String,
    "discount": pl.Int64,
    "mentions_last_viewed": pl.Boolean,
    "personal_dims": pl.Int64,
    **{f"suits_{c}": pl.Boolean for c in CHANNELS},
}


@dataclass(frozen=True)
class Catalog:
    """Message variants as column arrays (all of shape ``(K,)``).

    ``category_code`` is the index into :data:`CATEGORIES`, or ``-1`` for a dynamic
    (retargeting) variant; ``suits`` has shape ``(K, n_channels)``.
    """

    variant_ids: tuple[str, ...]
    category_code: np.ndarray
    tone_code: np.ndarray
    discount: np.ndarray
    mentions_last_viewed: np.ndarray
    personal_dims: np.ndarray
    suits: np.ndarray

    @property
    def n_variants(self) -> int:
        return len(self.variant_ids)

    def to_frame(self) -> pl.DataFrame:
        """The catalog as a polars frame with :data:`CATALOG_SCHEMA` columns."""
        category = [
            DYNAMIC_CATEGORY if c < 0 else CATEGORIES[c] for c in self.category_code.tolist()
        ]
        data: dict[str, Any] = {
            "variant_id": list(self.variant_ids),
            "category": category,
            "tone": [TONES[t] for t in self.tone_code.tolist()],
            "discount": self.discount.astype(np.int64),
            "mentions_last_viewed": self.mentions_last_viewed.astype(bool),
            "personal_dims": self.personal_dims.astype(np.int64),
        }
        for j, ch in enumerate(CHANNELS):
            data[f"suits_{ch}"] = self.suits[:, j].astype(bool)
        return pl.DataFrame(data, schema=CATALOG_SCHEMA)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> Catalog:
        """Build a catalog from a frame with :data:`CATALOG_SCHEMA` columns (validated)."""
        return catalog_from_records(frame.to_dicts())


def default_catalog(n_variants: int = 12, n_retargeting: int = 2) -> Catalog:
    """A deterministic catalog of ``n_variants`` variants, ``n_retargeting`` of them dynamic.

    Generic variants cycle through categories, tones and discount levels (0/10/20/30 %);
    every third generic variant greets the user by name (``personal_dims=1``). Retargeting
    variants mention the last-viewed item (``personal_dims=2``); the second one adds 10 % off.
    SMS suits only short ("urgent") copy; "premium" copy is not sent by SMS or push.
    """
    if not 2 <= n_variants <= 40:
        raise ConfigError(f"audience.catalog.n_variants must be in [2, 40], got {n_variants}")
    if not 0 <= n_retargeting < n_variants:
        raise ConfigError(
            f"audience.catalog.n_retargeting must be in [0, n_variants), got {n_retargeting}"
        )
    records: list[dict[str, Any]] = []
    retarget_specs = [("urgent", 0), ("friendly", 10), ("urgent", 20), ("premium", 0)]
    for i in range(n_retargeting):
        tone, disc = retarget_specs[i % len(retarget_specs)]
        records.append(
            {
                "variant_id": f"retarget_{i}_{tone}" + (f"_{disc}off" if disc else ""),
                "category": DYNAMIC_CATEGORY,
                "tone": tone,
                "discount": disc,
                "mentions_last_viewed": True,
                "personal_dims": 2,
            }
        )
    discounts = (0, 20, 10, 30)
    for i in range(n_variants - n_retargeting):
        cat = CATEGORIES[i % len(CATEGORIES)]
        tone = TONES[(i + i // len(CATEGORIES)) % len(TONES)]
        disc = discounts[(i // len(CATEGORIES) + i % 2) % len(discounts)]
        records.append(
            {
                "variant_id": f"{cat}_{tone}" + (f"_{disc}off" if disc else ""),
                "category": cat,
                "tone": tone,
                "discount": disc,
                "mentions_last_viewed": False,
                "personal_dims": 1 if i % 3 == 2 else 0,
            }
        )
    for rec in records:
        rec.update(_default_channels(rec["tone"]))
    return catalog_from_records(records)


def _default_channels(tone: str) -> dict[str, bool]:
    return {
        "suits_email": True,
        "suits_push": tone != "premium",
        "suits_sms": tone == "urgent",
        "suits_web": True,
    }


def catalog_from_records(records: Sequence[Mapping[str, Any]]) -> Catalog:
    """Validate variant records (dicts with :data:`CATALOG_SCHEMA` keys) into a Catalog.

    Missing ``suits_*`` keys default to the tone-based rule of :func:`default_catalog`;
    ``personal_dims`` defaults to 2 for retargeting variants and 0 otherwise.
    """
    if len(records) == 0:
        raise ConfigError("audience.catalog is empty: at least 2 message variants are needed")
    if len(records) < 2:
        raise ConfigError(
            f"audience.catalog has {len(records)} variant: at least 2 are needed to choose"
        )
    ids: list[str] = []
    cat, tone, disc, retarget, dims, suits = [], [], [], [], [], []
    for i, rec in enumerate(records):
        where = f"audience.catalog variant {i}"
        vid = str(rec.get("variant_id", "")).strip()
        if not vid:
            raise ConfigError(f"{where}: missing variant_id")
        if vid in ids:
            raise ConfigError(f"{where}: duplicate variant_id '{vid}'")
        ids.append(vid)
        mentions = bool(rec.get("mentions_last_viewed", False))
        category = str(rec.get("category", DYNAMIC_CATEGORY if mentions else ""))
        if category == DYNAMIC_CATEGORY:
            if not mentions:
                raise ConfigError(
                    f"{where} ('{vid}'): category '{DYNAMIC_CATEGORY}' needs "
                    "mentions_last_viewed=true"
                )
            cat.append(-1)
        elif category in CATEGORIES:
            cat.append(CATEGORIES.index(category))
        else:
            raise ConfigError(
                f"{where} ('{vid}'): unknown category '{category}' "
                f"(known: {', '.join((*CATEGORIES, DYNAMIC_CATEGORY))})"
            )
        t = str(rec.get("tone", "friendly"))
        if t not in TONES:
            raise ConfigError(f"{where} ('{vid}'): unknown tone '{t}' (known: {', '.join(TONES)})")
        tone.append(TONES.index(t))
        d = int(rec.get("discount", 0))
        if not 0 <= d < 100:
            raise ConfigError(f"{where} ('{vid}'): discount must be in [0, 100), got {d}")
        disc.append(d)
        retarget.append(mentions)
        dims.append(int(rec.get("personal_dims", 2 if mentions else 0)))
        defaults = _default_channels(t)
        suits.append([bool(rec.get(f"suits_{c}", defaults[f"suits_{c}"])) for c in CHANNELS])
    return Catalog(
        variant_ids=tuple(ids),
        category_code=np.asarray(cat, dtype=np.int64),
        tone_code=np.asarray(tone, dtype=np.int64),
        discount=np.asarray(disc, dtype=np.float64),
        mentions_last_viewed=np.asarray(retarget, dtype=bool),
        personal_dims=np.asarray(dims, dtype=np.float64),
        suits=np.asarray(suits, dtype=bool),
    )
