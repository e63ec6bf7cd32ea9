"""Helpers shared by the compare tests: scenario presets composed with Hydra's API."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bandits.policies import make_policy
from bandits.simulate.knobs import AudienceSettings, audience_settings_from_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def preset(name: str | None, *overrides: str) -> tuple[AudienceSettings, str]:
    """(audience settings, baseline rung) of a scenario preset."""
    extra = [f"experiment={name}"] if name else []
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("compare", overrides=[*extra, *overrides])
    audience = OmegaConf.to_container(cfg.audience, resolve=True)
    return audience_settings_from_dict(audience), str(cfg.baseline)  # type: ignore[arg-type]


def ladder(with_vw: bool = False):
    rungs = {
        "one_for_all": make_policy("ab_winner"),
        "segments": make_policy("segment_ts"),
        "retargeting": make_policy("retargeting"),
        "linucb": make_policy("linucb"),
    }
    if with_vw:
        rungs["vw"] = make_policy("vw")
    return rungs
