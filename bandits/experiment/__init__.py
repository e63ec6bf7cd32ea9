"""The three jobs as library calls with typed results — what a notebook, a script or an app
drives (no Hydra, no MLflow here; :mod:`bandits.tracking.results` logs the results).

* :func:`run_simulation` — one policy learns online on the synthetic audience:
  a :class:`SimulationResult` (exact true value, regret, curves, the decision log), which
  becomes a :class:`~bandits.data.LoggedData` (:meth:`SimulationResult.to_logged_data`) or
  a log directory (:meth:`SimulationResult.write_log_dir`).
* :func:`evaluate_log` — what a policy would have earned on a decision log (off-policy
  estimates, offline training, replay): an :class:`EvaluationResult`.
* :func:`compare_policies` — the personalization ladder on a :class:`ComparisonSource`
  (:class:`SimulatedSource`: replications of a campaign on a synthetic audience;
  :class:`LoggedSource`: one log, paired off-policy terms): a :class:`ComparisonResult`
  carrying its verdicts, interval level, estimand line and method text.

Example::

    import bandits
    from bandits.policies import make_policy
    from bandits.simulate import AudienceSettings

    ladder = {"retargeting": make_policy("retargeting"), "linucb": make_policy("linucb")}
    source = bandits.SimulatedSource(AudienceSettings(), rounds=5000, seed=1, replications=5)
    result = bandits.compare_policies(source, ladder, baseline="retargeting")
    print(result.headline)
"""

from bandits.experiment.comparison import (
    ONE_REPLICATION,
    ComparisonSettings,
    ComparisonSource,
    Guardrail,
    check_ladder,
    compare_policies,
    ladder_from_settings,
)
from bandits.experiment.evaluation import evaluate_log, evaluate_log_stream, resolve_mode
from bandits.experiment.results import (
    ComparisonResult,
    EvaluationResult,
    LoggedDetails,
    RungSummary,
    SimulationResult,
)
from bandits.experiment.simulation import (
    check_policy,
    public_log,
    run_simulation,
    simulation_seeds,
)
from bandits.experiment.sources import LoggedSource, SimulatedSource

__all__ = [
    "ONE_REPLICATION",
    "ComparisonResult",
    "ComparisonSettings",
    "ComparisonSource",
    "EvaluationResult",
    "Guardrail",
    "LoggedDetails",
    "LoggedSource",
    "RungSummary",
    "SimulatedSource",
    "SimulationResult",
    "check_ladder",
    "check_policy",
    "compare_policies",
    "evaluate_log",
    "evaluate_log_stream",
    "ladder_from_settings",
    "public_log",
    "resolve_mode",
    "run_simulation",
    "simulation_seeds",
]
