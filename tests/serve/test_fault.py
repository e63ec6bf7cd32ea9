"""Fault test: ``kill -9`` the server during a bounded load on 127.0.0.1; after a restart on
the same store, every decision that was answered is in the store exactly once and its
reward is still accepted."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests

from bandits.serve.store import DecisionStore

CLIENTS = 4
#: Bounds of the load: requests per client, seconds in all.
PER_CLIENT = 100
SECONDS = 30.0
#: Answered decisions before the kill.
KILL_AFTER = 60


def test_kill_9_under_load_loses_no_answered_decision(traffic, start_server, tmp_path):
    store = tmp_path / "fault.db"
    overrides = (f"model={traffic.bundle}", f"store={store}", "seed=9")
    server = start_server(*overrides)
    answered: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(worker: int) -> None:
        session = requests.Session()
        for i in range(PER_CLIENT):
            if time.monotonic() > deadline:
                return
            body = {"context": traffic.contexts[(worker * PER_CLIENT + i) % len(traffic.contexts)]}
            try:
                response = session.post(server.url + "/rank", json=body, timeout=10)
            except requests.RequestException:
                return  # the server is gone
            if response.status_code == 200:
                with lock:
                    answered.append(response.json()["event_id"])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    while time.monotonic() < deadline:
        with lock:
            if len(answered) >= KILL_AFTER:
                break
        time.sleep(0.005)
    server.kill()  # SIGKILL by pid, mid-load
    for t in threads:
        t.join(timeout=30)
    assert len(answered) >= KILL_AFTER
    assert len(set(answered)) == len(answered)

    restarted = start_server(*overrides, workdir=tmp_path / "restart")
    db = DecisionStore(store)
    ids = db.event_ids()
    db.close()
    counts = Counter(ids)
    assert all(counts[e] == 1 for e in answered)  # every answered decision, exactly once
    assert max(counts.values()) == 1
    for event_id in answered:
        r = requests.post(
            restarted.url + "/reward", json={"event_id": event_id, "reward": 1.0}, timeout=10
        )
        assert r.status_code == 200, r.text
    after = requests.post(
        restarted.url + "/rank", json={"context": traffic.contexts[0]}, timeout=10
    ).json()
    assert after["event_id"] not in counts  # a new start: new batch id, no id reused
    assert after["event_id"].split("-")[0] != answered[0].split("-")[0]
    health = requests.get(restarted.url + "/health", timeout=10).json()
    assert health["start"] == 1 and health["rewards"] == len(answered)
