"""Real-time decisions over HTTP: a rank / reward service over a durable decision store.

* :mod:`bandits.serve.store` — decisions and rewards in SQLite (WAL, fsync per commit, group
  commit) or a database URL; exported as the ``decide`` app's decision layout.
* :mod:`bandits.serve.ranker` — one request → one decision record (the same row
  :class:`bandits.deploy.decide.Decider` writes), candidates, shadow (apprentice) columns.
* :mod:`bandits.serve.learner` — online mini-batch learning from joined rewards, snapshots
  of new model versions.
* :mod:`bandits.serve.app` — the FastAPI application and :func:`open_service`.

The ``serve`` app (``python -m experiments.serve``) runs it on uvicorn, bound to 127.0.0.1
by default. No MLflow and no Hydra here.
"""

from bandits.serve.learner import OnlineLearner, OnlineSettings
from bandits.serve.ranker import Ranker, RequestError, restrict
from bandits.serve.store import DecisionStore

__all__ = [
    "DecisionStore",
    "OnlineLearner",
    "OnlineSettings",
    "Ranker",
    "RequestError",
    "restrict",
]
