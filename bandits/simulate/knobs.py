"""The knobs of the synthetic audience: every effect of the truth model has its own weight.

These dataclasses are plain settings (the Hydra ``audience`` group maps onto them one to one);
:func:`audience_settings_from_dict` validates a nested mapping into them with one-line errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bandits.errors import ConfigError
from bandits.settings import coerce_setting, coerce_settings, dataclass_defaults
from bandits.simulate.vocab import SEGMENTS

REWARD_KINDS = ("click", "conversion", "revenue")


@dataclass(frozen=True)
class ResponseKnobs:
    """Weights of the response model (the truth). See :mod:`bandits.simulate.response`.

    Click logit of variant k for user u in context x (category c = c_k, or the user's
    last-viewed category for a retargeting variant)::

        eta = base_logit
            + segment_weight * (seg_cat[s_u, c] + seg_tone[s_u, tone_k] + seg_disc[s_u] * disc_k/10)
            + taste_weight * (taste[u, c] + disc_taste[u] * disc_k/10)
            + context_weight * (weather_cat[w, c] + daypart_cat[d, c] + channel_tone[ch, tone_k]
                                + daypart_channel[d, ch] + weekday[wd])
            - channel_mismatch_penalty * 1[variant k does not suit channel ch]
            + retargeting_weight * mentions_k * 2**(-days_since_view/half_life)
                                 * retargeting_scale * (settled_u - retargeting_settled_threshold)
            - fatigue_weight * log1p(exposure[u, k])

    Unsubscribe logit (the "creepiness" cost)::

        unsub_base_logit + creepiness_weight * (creepiness_per_dim * personal_dims_k
                                               + repetition_unsubscribe * log1p(exposure[u, k]))
    """

    base_logit: float = -2.6
    segment_weight: float = 1.0
    taste_weight: float = 1.0
    taste_observability: float = 0.7
    context_weight: float = 1.0
    channel_mismatch_penalty: float = 1.0
    retargeting_weight: float = 1.0
    retargeting_scale: float = 2.5
    retargeting_half_life_days: float = 1.7
    retargeting_settled_threshold: float = 0.6
    fatigue_weight: float = 0.3
    fatigue_memory_days: float = 7.0
    unsubscribe_base_logit: float = -6.5
    creepiness_weight: float = 1.0
    creepiness_per_dim: float = 0.6
    repetition_unsubscribe: float = 0.5
    world_noise: float = 0.3
    reward: str = "click"


@dataclass(frozen=True)
class DriftKnobs:
    """Non-stationarity: daily Gaussian random-walk steps (standard deviations, logit units)."""

    taste_sd_per_day: float = 0.0
    context_sd_per_day: float = 0.0


@dataclass(frozen=True)
class CatalogKnobs:
    """The message catalog: a generated default, or explicit ``variants`` records."""

    n_variants: int = 12
    n_retargeting: int = 2
    variants: tuple[Mapping[str, Any], ...] | None = None


@dataclass(frozen=True)
class AudienceSettings:
    """Everything that defines a synthetic audience (the world is drawn from the run seed)."""

    name: str = "default"
    n_users: int = 20_000
    impressions_per_day: int = 2_000
    segment_shares: tuple[float, ...] = (0.3, 0.25, 0.25, 0.2)
    feedback_delay_days: int = 0
    catalog: CatalogKnobs = field(default_factory=CatalogKnobs)
    response: ResponseKnobs = field(default_factory=ResponseKnobs)
    drift: DriftKnobs = field(default_factory=DriftKnobs)

    def __post_init__(self) -> None:
        if self.n_users < 1:
            raise ConfigError(f"audience.n_users must be ≥ 1, got {self.n_users}")
        if self.impressions_per_day < 1:
            raise ConfigError(
                f"audience.impressions_per_day must be ≥ 1, got {self.impressions_per_day}"
            )
        if len(self.segment_shares) != len(SEGMENTS):
            raise ConfigError(
                f"audience.segment_shares needs {len(SEGMENTS)} values ({', '.join(SEGMENTS)}), "
                f"got {len(self.segment_shares)}"
            )
        if min(self.segment_shares) < 0 or sum(self.segment_shares) <= 0:
            raise ConfigError(
                f"audience.segment_shares must be non-negative with a positive sum, "
                f"got {list(self.segment_shares)}"
            )
        if self.feedback_delay_days < 0:
            raise ConfigError(
                f"audience.feedback_delay_days must be ≥ 0, got {self.feedback_delay_days}"
            )
        r = self.response
        if r.reward not in REWARD_KINDS:
            raise ConfigError(
                f"audience.response.reward must be one of {', '.join(REWARD_KINDS)}, "
                f"got '{r.reward}'"
            )
        if not 0.0 <= r.taste_observability <= 1.0:
            raise ConfigError(
                "audience.response.taste_observability must be in [0, 1], "
                f"got {r.taste_observability}"
            )
        if r.retargeting_half_life_days <= 0 or r.fatigue_memory_days <= 0:
            raise ConfigError(
                "audience.response.retargeting_half_life_days and fatigue_memory_days must be > 0"
            )


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})"
        )
    return cls(**coerce_settings(data, dataclass_defaults(cls), where))


def audience_settings_from_dict(data: Mapping[str, Any]) -> AudienceSettings:
    """Validate a nested mapping (e.g. the Hydra ``audience`` node) into settings."""
    data = dict(data)
    data.pop("_target_", None)
    catalog = dict(data.pop("catalog", {}) or {})
    if catalog.get("variants") is not None:
        catalog["variants"] = tuple(dict(v) for v in catalog["variants"])
    response = dict(data.pop("response", {}) or {})
    drift = dict(data.pop("drift", {}) or {})
    if "segment_shares" in data:
        shares = data["segment_shares"]
        if isinstance(shares, str) or not hasattr(shares, "__iter__"):
            raise ConfigError(f"audience.segment_shares must be a list of numbers, got {shares!r}")
        data["segment_shares"] = tuple(
            coerce_setting(x, 0.0, "audience.segment_shares") for x in shares
        )
    return _build(
        AudienceSettings,
        {
            **data,
            "catalog": _build(CatalogKnobs, catalog, "audience.catalog"),
            "response": _build(ResponseKnobs, response, "audience.response"),
            "drift": _build(DriftKnobs, drift, "audience.drift"),
        },
        "audience",
    )
