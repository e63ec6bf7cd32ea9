"""From a trained policy to decisions for real users, and back to logs the tool evaluates.

* :mod:`bandits.deploy.bundle` — a trained policy as files (state, catalog, feature schema,
  settings, version); :class:`DeployedPolicy` is a loaded one. The MLflow model
  (:mod:`bandits.tracking.policy_model`) wraps a bundle.
* :mod:`bandits.deploy.decide` — batch decisions with exact propensities and an optional
  randomised holdout, written atomically in the logged-data contract.
* :mod:`bandits.deploy.join` — rewards joined back by event id within an attribution window.
* :mod:`bandits.deploy.privacy` — keyed hashes of user ids (raw ids are never stored).

No MLflow here: the library decides from a loaded policy.
"""

from bandits.deploy.bundle import DeployedPolicy, load_bundle, save_bundle
from bandits.deploy.decide import Decider, Holdout, decide, decide_file

__all__ = [
    "Decider",
    "DeployedPolicy",
    "Holdout",
    "decide",
    "decide_file",
    "load_bundle",
    "save_bundle",
]
