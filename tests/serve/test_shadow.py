"""Shadow (apprentice) mode end to end on simulated traffic: the baseline (retargeting with
exploration) acts and is logged with its propensities, the candidate (LinUCB) records what
it would have chosen and learns online from the baseline's logged decisions; the exported
store, joined with the rewards, is a log that ``evaluate`` reads as is, and the estimate of
what the candidate would have earned (``policy=given`` on ``shadow_probs``) has the
simulator's truth inside its interval, with support diagnostics.

Over HTTP (a real server) the default test runs 300 decisions — the wiring, the versions,
the export; its intervals are wide (little support in 300 rows). The statistical check —
sufficient support, informative intervals containing the truth — is the in-process test on
4,000 decisions (same store, learner, export, join and evaluate; no HTTP)."""

from __future__ import annotations

import datetime as dt
import signal
import time

import numpy as np
import pytest
import requests

import bandits
from bandits.deploy.decide import write_decisions
from bandits.deploy.join import join_rewards
from bandits.serve.ranker import SHADOW_MODEL_VERSION, SHADOW_PROBS
from bandits.serve.store import DecisionStore

EPSILON = 0.2


def _drive(server, traffic, blocks: int, block: int) -> dict[str, int]:
    """``blocks`` × ``block`` requests, each rewarded with the simulator's outcome of
    the shown variant; after each block, wait (bounded) for the learner's update, so which
    decisions each model version made does not depend on timing."""
    session = requests.Session()
    index = {v: j for j, v in enumerate(traffic.deployed.action_ids)}
    rows: dict[str, int] = {}
    for b in range(blocks):
        for i in range(b * block, (b + 1) * block):
            answer = session.post(
                server.url + "/rank", json={"context": traffic.contexts[i]}, timeout=30
            )
            assert answer.status_code == 200, answer.text
            event = answer.json()
            rows[event["event_id"]] = i
            reward = float(traffic.potential[i, index[event["action"]]])
            r = session.post(
                server.url + "/reward",
                json={"event_id": event["event_id"], "reward": reward},
                timeout=30,
            )
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while session.get(server.url + "/health", timeout=30).json()["updates"] < b + 1:
            assert time.monotonic() < deadline, "the learner did not update within 60 s"
            time.sleep(0.05)
    return rows


def _shadow_log(traffic, start_server, tmp_path, blocks: int, block: int):
    store = tmp_path / "shadow.db"
    server = start_server(
        f"model={traffic.bundle}",
        f"store={store}",
        "shadow=true",
        "baseline.name=retargeting",
        f"baseline.settings.epsilon={EPSILON}",
        "learn=online",
        f"online.batch={block}",
        "online.interval=0.1",
        "online.window=1h",
        "seed=21",
    )
    rows = _drive(server, traffic, blocks, block)
    health = requests.get(server.url + "/health", timeout=30).json()
    assert server.stop() == -signal.SIGTERM
    db = DecisionStore(store)
    exported = db.export(tmp_path / "export")
    decisions = db.decisions()
    events = db.rewards().select("event_id", "reward", "occurred_at")
    catalog = db.catalog()
    db.close()
    assert exported["decisions"] == len(rows) == exported["rewards"]
    as_of = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=2)
    joined, summary = join_rewards(decisions, events, window="1h", as_of=as_of)
    assert summary.written == len(rows) and summary.attributed == len(rows)
    features = traffic.deployed.spec.features.to_dict()
    log_path, _ = write_decisions(
        tmp_path / "joined", iter([joined]), catalog=catalog, metadata={"features": features}
    )
    return health, rows, joined, log_path.parent


def _check_estimate(log_dir, column: str, truth: float) -> dict[str, float]:
    log = bandits.load_log(log_dir, target_columns=(column,))
    result = bandits.evaluate_log(
        log,
        bandits.make_policy("given", {"column": column}),
        estimators=("ips", "dr"),
        cross_fit_folds=2,
        seed=3,
    )
    metrics = result.metrics()
    for name in ("ips", "dr"):
        assert metrics[f"{name}.ci_low"] <= truth <= metrics[f"{name}.ci_high"], (
            name,
            truth,
            metrics[f"{name}.ci_low"],
            metrics[f"{name}.ci_high"],
        )
    assert "evidence" in result.tags()
    return metrics


def _run(traffic, start_server, tmp_path, blocks: int, block: int) -> None:
    health, rows, joined, log_dir = _shadow_log(traffic, start_server, tmp_path, blocks, block)
    # the candidate learned from the baseline's logged decisions: one version per block
    versions = joined[SHADOW_MODEL_VERSION].unique(maintain_order=True).to_list()
    assert len(versions) == blocks and versions[0] == traffic.deployed.model_version
    assert health["updates"] == blocks and health["learned"] == blocks * block
    assert (joined["model_version"] == joined["model_version"][0]).all()  # the baseline is fixed
    order = np.array([rows[e] for e in joined["event_id"].to_list()])
    shadow = joined[SHADOW_PROBS].to_numpy()
    logged = joined["action_probs"].to_numpy()
    assert logged.min() >= EPSILON / logged.shape[1] - 1e-12  # the baseline's support
    expected = traffic.expected[order]
    truth_candidate = float((shadow * expected).sum(axis=1).mean())
    truth_baseline = float((logged * expected).sum(axis=1).mean())
    assert (joined["action"] != joined["shadow_action"]).any()
    _check_estimate(log_dir, SHADOW_PROBS, truth_candidate)
    _check_estimate(log_dir, "action_probs", truth_baseline)


def test_shadow_mode_end_to_end(traffic, start_server, tmp_path):
    _run(traffic, start_server, tmp_path, blocks=2, block=150)


@pytest.mark.slow
def test_shadow_mode_end_to_end_full_day(traffic, start_server, tmp_path):
    _run(traffic, start_server, tmp_path, blocks=8, block=250)


def _app(app: str, tmp_path, *args: str):
    import os
    import subprocess
    import sys

    from experiments.serve import ServerProcess

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{app}", *args, f"hydra.run.dir={tmp_path}/h-{app}"],
        cwd=ServerProcess.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_shadow_log_through_the_apps(traffic, start_server, tmp_path):
    """The same loop through the command line: ``serve export=`` → ``join`` → ``evaluate
    policy=given policy.column=shadow_probs`` on the joined directory, as is."""
    _shadow_log(traffic, start_server, tmp_path, blocks=2, block=150)
    exported = _app("serve", tmp_path, f"store={tmp_path / 'shadow.db'}", f"export={tmp_path}/x")
    assert exported.returncode == 0, exported.stderr
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    joined = _app(
        "join",
        tmp_path,
        f"decisions={tmp_path}/x/decisions",
        f"rewards={tmp_path}/x/rewards.parquet",
        f"output={tmp_path}/joined_cli",
        "window=1h",
        f"as_of={later}",
    )
    assert joined.returncode == 0, joined.stderr
    evaluated = _app(
        "evaluate",
        tmp_path,
        f"logs={tmp_path}/joined_cli",
        "policy=given",
        f"policy.column={SHADOW_PROBS}",
        "estimators=[ips,dr]",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "dr" in (evaluated.stdout + evaluated.stderr).lower()


def test_shadow_estimate_on_two_simulated_days(tmp_path):
    """The statistics of the same loop in process (the store, learner, export, join and
    evaluate of the service; no HTTP, so it is fast enough for 4,000 decisions): retargeting
    with ε = 0.3 acts on two simulated days, LinUCB shadows it and learns every 500
    decisions; the shadow log's support is sufficient, and the IPS and DR intervals for the
    candidate are informative and contain its exact value on the served contexts."""
    from bandits.deploy.bundle import DeployedPolicy, load_bundle, save_bundle
    from bandits.policies import make_policy
    from bandits.serve.app import open_service
    from bandits.serve.learner import OnlineSettings
    from bandits.simulate import AudienceSettings, Environment, problem_spec

    env = Environment(AudienceSettings(impressions_per_day=2_000), 11)
    spec = problem_spec(env)
    trained = make_policy("linucb", {"epsilon": 0.05}).bind(spec, 5)
    for _ in range(2):
        day = env.next_day(2_000)
        env.commit(day, trained.play(spec.contexts(day.frame), day.potential_reward).actions)
    save_bundle(tmp_path / "candidate", trained)
    candidate = load_bundle(tmp_path / "candidate")
    retargeting = make_policy("retargeting", {"epsilon": 0.3}).bind(spec, 1)
    baseline = DeployedPolicy.from_policy(retargeting, extra_columns=candidate.input_columns)
    block = 500  # decisions per learning step (a day's last block may be a few short)
    online = OnlineSettings(batch=400, interval=1e6, window="1h", snapshots=str(tmp_path / "m"))
    service = open_service(
        candidate,
        tmp_path / "s.db",
        seed=3,
        mode="shadow",
        baseline=baseline,
        learn="online",
        online=online,
    )
    service.open()
    learner = service.learner
    assert learner is not None
    index = {v: j for j, v in enumerate(spec.action_ids)}
    truth_rows: dict[str, np.ndarray] = {}
    for _ in range(2):
        day = env.next_day(2_000)
        contexts = day.frame.drop("timestamp", "user_key", "hour").to_dicts()
        shown = np.empty(len(contexts), np.int64)
        for s in range(0, len(contexts), block):
            parsed = [service.ranker.parse({"context": c}) for c in contexts[s : s + block]]
            results = service.ranker.rank_parsed(parsed)
            service.store.submit_decisions([r for r, _ in results]).result(timeout=60)
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            for j, (_, answer) in enumerate(results):
                i = s + j
                shown[i] = index[answer["action"]]
                truth_rows[answer["event_id"]] = day.truth.expected_reward[i]
                reward = float(day.potential_reward[i, shown[i]])
                service.store.submit_reward(answer["event_id"], reward, now, now)
            service.store.submit_decisions([]).result(timeout=60)  # the rewards are in
            assert learner.step(now + dt.timedelta(seconds=1)) == len(results)
        env.commit(day, shown)
    decisions = service.store.decisions()
    events = service.store.rewards().select("event_id", "reward", "occurred_at")
    catalog = service.store.catalog()
    service.close()
    as_of = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=2)
    joined, _ = join_rewards(decisions, events, window="1h", as_of=as_of)
    assert joined[SHADOW_MODEL_VERSION].n_unique() == 8  # one version per block
    expected = np.stack([truth_rows[e] for e in joined["event_id"].to_list()])
    truth = float((joined[SHADOW_PROBS].to_numpy() * expected).sum(axis=1).mean())
    path, _ = write_decisions(
        tmp_path / "joined",
        iter([joined]),
        catalog=catalog,
        metadata={"features": spec.features.to_dict()},
    )
    log = bandits.load_log(path.parent, target_columns=(SHADOW_PROBS,))
    result = bandits.evaluate_log(
        log,
        bandits.make_policy("given", {"column": SHADOW_PROBS}),
        estimators=("ips", "dr"),
        cross_fit_folds=2,
        seed=3,
    )
    metrics = result.metrics()
    assert result.tags()["evidence"] == "sufficient"
    for name in ("ips", "dr"):
        low, high = metrics[f"{name}.ci_low"], metrics[f"{name}.ci_high"]
        assert low <= truth <= high, (name, truth, low, high)
        assert high - low < 0.4  # informative: rewards are in [0, 1]
