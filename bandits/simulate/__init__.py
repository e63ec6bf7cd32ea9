"""The synthetic marketing audience with a known truth, and the online loop."""

from bandits.simulate.environment import Day, Environment, default_feature_schema
from bandits.simulate.knobs import AudienceSettings, audience_settings_from_dict
from bandits.simulate.online import OnlineResult, Oracle, problem_spec, run_online

__all__ = [
    "AudienceSettings",
    "Day",
    "Environment",
    "OnlineResult",
    "Oracle",
    "audience_settings_from_dict",
    "default_feature_schema",
    "problem_spec",
    "run_online",
]
