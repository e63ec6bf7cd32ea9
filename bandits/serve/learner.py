"""Online learning for the HTTP service: mini-batches of joined rewards, new model versions.

Every ``interval`` seconds the learner takes the decisions it has not learned from whose
reward is *final* — a reward arrived (the store keeps one per decision) or the attribution
``window`` closed without one — and joins their rewards with
:func:`bandits.deploy.join.join_rewards` (the ``join`` app's rule: events inside
``[decided_at, decided_at + window]`` count, a decision without one gets reward 0). Once at
least ``batch`` are ready it calls the learning policy's
``update(contexts, actions, rewards, propensities)`` with the *logged* actions and
propensities (in shadow mode: the baseline's decisions — the candidate learns from what the
baseline did), saves the result as a new policy bundle under ``snapshots/<model version>``
(:func:`bandits.deploy.bundle.save_bundle`) and records it, and the decisions it learned
from, in the store in one transaction; only then does the service decide with it, so every
decision row names a model version whose snapshot is recorded.

The serving copy is loaded from the snapshot (:func:`load_bundle`), never the object being
trained, so a decision never sees half an update. After a restart the newest snapshot
learned from the configured model is loaded and training resumes from the decisions not yet
learned. Decisions of the "no message" holdout arm (a variant the policy does not have) are
marked learned but not used.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from bandits.deploy.bundle import DeployedPolicy, load_bundle, save_bundle
from bandits.deploy.decide import utc_now
from bandits.deploy.join import join_rewards, parse_window
from bandits.errors import ConfigError
from bandits.serve.ranker import Ranker
from bandits.serve.store import DecisionStore

LEARN_MODES = ("frozen", "online")
#: Most decisions one update reads.
MAX_BATCH = 100_000

__all__ = ["LEARN_MODES", "OnlineLearner", "OnlineSettings"]


@dataclass(frozen=True)
class OnlineSettings:
    """``batch``: decisions per update (≥ 1); ``interval``: seconds between checks (> 0);
    ``window``: the attribution window (``7d``, ``36h``, …); ``snapshots``: the folder of
    the learned bundles."""

    batch: int = 256
    interval: float = 5.0
    window: str = "7d"
    snapshots: str = ""

    def check(self) -> None:
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ConfigError(f"online.batch={self.batch!r}: must be an integer ≥ 1")
        try:
            interval = float(self.interval)
        except (TypeError, ValueError):
            raise ConfigError(f"online.interval={self.interval!r}: expected seconds") from None
        if not interval > 0:
            raise ConfigError(f"online.interval={self.interval}: must be > 0 seconds")
        parse_window(self.window)
        if not str(self.snapshots).strip():
            raise ConfigError("online.snapshots is empty: give a folder for the learned models")


class OnlineLearner:
    """Learns the ranker's acting policy (``role="acting"``) or its shadow candidate
    (``role="shadow"``) from the store (module docstring).

    Args:
        store: the decision store (its writer thread running).
        ranker: the ranker whose policy is swapped after each update.
        role: which of the ranker's policies learns.
        base: the configured model (the start of every learned version).
        settings: :class:`OnlineSettings`.
    """

    def __init__(
        self,
        store: DecisionStore,
        ranker: Ranker,
        role: Literal["acting", "shadow"],
        base: DeployedPolicy,
        settings: OnlineSettings,
    ) -> None:
        settings.check()
        if not base.policy.learns:
            raise ConfigError(
                f"learn=online: policy '{base.name}' does not learn (use learn=frozen)"
            )
        self.store = store
        self.ranker = ranker
        self.role = role
        self.base = base
        self.settings = settings
        self.window = parse_window(settings.window)
        self.snapshots = Path(settings.snapshots).expanduser().resolve()
        self.snapshots.mkdir(parents=True, exist_ok=True)
        self.updates = 0
        self.learned = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        latest = store.latest_model(base.model_version)
        if latest is not None and (Path(latest[1]) / "policy.json").is_file():
            self.version = latest[0]
            start = Path(latest[1])
            self._swap(load_bundle(start))
        else:
            self.version = base.model_version
            start = self.snapshots / base.model_version
            if not (start / "policy.json").is_file():
                self._save(base.policy, start)
        self._training = load_bundle(start)  # the copy that learns (never served)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="online-learner", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(float(self.settings.interval)):
            try:
                self.step()
                self.last_error = None
            except Exception as exc:  # keep serving with the last good version
                text = str(exc).strip().splitlines()
                self.last_error = f"{type(exc).__name__}: {text[0][:300] if text else ''}"
                print(f"error: online learning: {self.last_error}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ one update
    def step(self, now: dt.datetime | None = None) -> int:
        """One mini-batch if at least ``batch`` decisions are final; returns how many were
        learned from (0: not enough yet)."""
        now = now or utc_now()
        frame = self.store.unlearned(now - self.window, MAX_BATCH)
        if frame.height < int(self.settings.batch):
            return 0
        ids = frame["event_id"].to_list()
        events = self.store.rewards(ids).select("event_id", "reward", "occurred_at")
        last = frame["decided_at"].max()
        assert isinstance(last, dt.datetime)
        as_of = last + self.window  # every window of the batch closed
        joined, _ = join_rewards(
            frame, events, window=self.window, as_of=as_of, missing="zero", duplicates="first"
        )
        policy = self._training.policy
        spec = self._training.spec
        index = {v: j for j, v in enumerate(spec.action_ids)}
        actions = np.array([index.get(a, -1) for a in joined["action"].to_list()], np.int64)
        usable = actions >= 0
        if usable.any():
            rows = joined.filter(usable)
            policy.update(
                spec.contexts(rows),
                actions[usable],
                rows["reward"].to_numpy(),
                rows["propensity"].to_numpy(),
            )
        folder = self.snapshots / "incoming"
        deployed = self._save(policy, folder)
        final = self.snapshots / deployed.model_version
        if final.exists():
            shutil.rmtree(folder)
        else:
            folder.rename(final)
        self.store.submit_model(
            deployed.model_version, str(final), self.base.model_version, ids
        ).result(timeout=120)
        self._swap(load_bundle(final))
        self.version = deployed.model_version
        self.updates += 1
        self.learned += int(usable.sum())
        return int(usable.sum())

    def _save(self, policy, folder: Path) -> DeployedPolicy:
        """``save_bundle`` into ``folder`` via a temporary sibling (renamed when complete)."""
        tmp = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=self.snapshots))
        try:
            deployed = save_bundle(tmp, policy, extra_columns=self.base.input_columns)
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return deployed

    def _swap(self, deployed: DeployedPolicy) -> None:
        if self.role == "acting":
            self.ranker.swap(acting=deployed)
        else:
            self.ranker.swap(shadow=deployed)
