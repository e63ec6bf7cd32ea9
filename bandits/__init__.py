"""Contextual bandit experimentation framework (library: no Hydra inside).

The front door for notebooks and scripts — the three jobs as calls with typed results
(:mod:`bandits.experiment`), and what they need::

    import bandits

    audience = bandits.AudienceSettings()                       # the built-in audience
    sim = bandits.run_simulation(bandits.make_policy("uniform"), audience, 20_000, seed=1)
    log = sim.to_logged_data()                                  # or sim.write_log_dir(path)
    ev = bandits.evaluate_log(log, bandits.make_policy("retargeting"))
    ladder = {"retargeting": bandits.make_policy("retargeting"),
              "linucb": bandits.make_policy("linucb")}
    result = bandits.compare_policies(
        bandits.SimulatedSource(audience, rounds=5000, seed=1, replications=5),
        ladder, baseline="retargeting")
    print(result)                                               # the verdict

Names are imported on first use, so ``import bandits`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name → the module that defines it
_EXPORTS = {
    "run_simulation": "bandits.experiment",
    "evaluate_log": "bandits.experiment",
    "evaluate_log_stream": "bandits.experiment",
    "compare_policies": "bandits.experiment",
    "SimulatedSource": "bandits.experiment",
    "LoggedSource": "bandits.experiment",
    "ComparisonSource": "bandits.experiment",
    "SimulationResult": "bandits.experiment",
    "EvaluationResult": "bandits.experiment",
    "ComparisonResult": "bandits.experiment",
    "Guardrail": "bandits.experiment",
    "AudienceSettings": "bandits.simulate",
    "make_policy": "bandits.policies",
    "load_log": "bandits.data",
}

__all__ = [
    "AudienceSettings",
    "ComparisonResult",
    "ComparisonSource",
    "EvaluationResult",
    "Guardrail",
    "LoggedSource",
    "SimulatedSource",
    "SimulationResult",
    "compare_policies",
    "evaluate_log",
    "evaluate_log_stream",
    "load_log",
    "make_policy",
    "run_simulation",
]

if TYPE_CHECKING:
    from bandits.data import load_log
    from bandits.experiment import (
        ComparisonResult,
        ComparisonSource,
        EvaluationResult,
        Guardrail,
        LoggedSource,
        SimulatedSource,
        SimulationResult,
        compare_policies,
        evaluate_log,
        evaluate_log_stream,
        run_simulation,
    )
    from bandits.policies import make_policy
    from bandits.simulate import AudienceSettings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bandits' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
