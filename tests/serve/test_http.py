"""The service as a real server process on 127.0.0.1, exercised over HTTP with requests:
the rank / reward round trip, candidate restriction, every kind of bad request (4xx with one
line naming the field, the server still serving), and the store's export as ``decide``'s
decision records."""

from __future__ import annotations

import signal

import numpy as np
import polars as pl
import requests

from bandits.deploy.decide import Decider
from bandits.serve.store import DecisionStore

TIMEOUT = 30
#: A server stopped with SIGTERM ends by that signal once it has shut down cleanly.
STOPPED = -signal.SIGTERM


def _rank(server, body, **kw):
    return requests.post(server.url + "/rank", json=body, timeout=TIMEOUT, **kw)


def _reward(server, body):
    return requests.post(server.url + "/reward", json=body, timeout=TIMEOUT)


def _error(response, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    message = response.json()["error"]
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)
    return message


def test_round_trip_candidates_bad_requests_and_export(traffic, start_server, tmp_path):
    store = tmp_path / "pilot.db"
    server = start_server(
        f"model={traffic.bundle}", f"store={store}", "seed=4", "max_body_bytes=4096"
    )
    ids = traffic.deployed.action_ids
    ctx = traffic.contexts[0]

    ok = _rank(server, {"context": ctx})
    assert ok.status_code == 200, ok.text
    answer = ok.json()
    probs = np.array([answer["probabilities"][v] for v in ids])
    expected = traffic.deployed.probs(traffic.frame.head(1))[0]
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-15)
    assert answer["propensity"] == answer["probabilities"][answer["action"]]
    assert answer["model_version"] == traffic.deployed.model_version

    # candidates: the distribution restricted and renormalised; the propensity is exact
    chosen = [ids[1], ids[4], ids[7]]
    restricted = _rank(server, {"context": ctx, "candidates": chosen}).json()
    got = np.array([restricted["probabilities"][v] for v in ids])
    mask = np.isin(np.array(ids), chosen)
    np.testing.assert_allclose(got, np.where(mask, expected, 0) / expected[mask].sum(), atol=1e-15)
    assert restricted["action"] in chosen
    assert restricted["propensity"] == restricted["probabilities"][restricted["action"]]

    # rewards: recorded once; a second one and an unknown id refused
    assert _reward(server, {"event_id": answer["event_id"], "reward": 1.5}).status_code == 200
    _error(_reward(server, {"event_id": answer["event_id"], "reward": 1}), 409, "event_id")
    _error(_reward(server, {"event_id": "nope-1", "reward": 1}), 404, "event_id", "nope-1")

    some = dict(ctx)
    del some["channel"]
    bad = {
        "missing context column": (_rank(server, {"context": some}), 422, "context.channel"),
        "no context": (_rank(server, {"candidates": chosen}), 422, "context"),
        "unknown variant": (
            _rank(server, {"context": ctx, "candidates": ["nope"]}),
            422,
            "candidates",
        ),
        "numeric as text": (
            _rank(server, {"context": {**ctx, "frequency": "often"}}),
            422,
            "context.frequency",
        ),
        "categorical as number": (
            _rank(server, {"context": {**ctx, "segment": 3}}),
            422,
            "context.segment",
        ),
        "unknown level": (
            _rank(server, {"context": {**ctx, "weather": "fog"}}),
            422,
            "context.weather",
        ),
        "boolean as number": (
            _rank(server, {"context": {**ctx, "days_since_view": True}}),
            422,
            "context.days_since_view",
        ),
        "unknown field": (_rank(server, {"context": ctx, "candidate": chosen}), 422, "candidate"),
        "oversize body": (
            _rank(server, {"context": {**ctx, "padding": "x" * 5000}}),
            413,
            "body",
        ),
        "not JSON": (
            requests.post(server.url + "/rank", data=b"{nope", timeout=TIMEOUT),
            400,
            "body",
        ),
        "reward as text": (
            _reward(server, {"event_id": answer["event_id"], "reward": "one"}),
            422,
            "reward",
        ),
        "reward missing": (_reward(server, {"event_id": answer["event_id"]}), 422, "reward"),
        "bad time": (
            _reward(server, {"event_id": answer["event_id"], "reward": 1, "occurred_at": "soon"}),
            422,
            "occurred_at",
        ),
        "user id without a key": (
            _rank(server, {"context": ctx, "user_id": "u-17"}),
            422,
            "user_id",
        ),
    }
    for name, (response, status, field) in bad.items():
        _error(response, status, field)
        assert requests.get(server.url + "/health", timeout=TIMEOUT).status_code == 200, name
    after = _rank(server, {"context": traffic.contexts[1]})
    assert after.status_code == 200

    health = requests.get(server.url + "/health", timeout=TIMEOUT).json()
    assert health["decisions"] == 3 and health["rewards"] == 1
    assert server.stop() == STOPPED

    # the store's records are decide's rows: same columns, types and values
    db = DecisionStore(store)
    frame = db.decisions()
    db.close()
    assert frame["event_id"].to_list() == [
        answer["event_id"],
        restricted["event_id"],
        after.json()["event_id"],
    ]
    reference = Decider(traffic.deployed, seed=0, batch="x").decide(
        traffic.frame.head(1).with_columns(
            pl.col(c).cast(pl.Float64)
            for c in traffic.deployed.spec.features.columns
            if traffic.frame.schema[c].is_numeric()
        )
    )
    assert frame.schema == reference.schema
    assert frame["propensity"].to_list() == [
        answer["propensity"],
        restricted["propensity"],
        after.json()["propensity"],
    ]
    np.testing.assert_array_equal(frame["action_probs"].to_numpy()[1], got)


def test_database_url_store_and_hashed_user_ids(traffic, start_server, tmp_path):
    """A database URL goes through SQLAlchemy (a SQLite URL here: no other database server
    is available to the tests); with the hashing key set, a user id is stored only as its
    keyed hash."""
    from bandits.deploy.privacy import hash_ids

    url = f"sqlite:///{tmp_path / 'team.db'}"
    key = "k" * 32
    server = start_server(f"model={traffic.bundle}", f"store={url}", env={"BANDITS_ID_KEY": key})
    ok = _rank(server, {"context": traffic.contexts[2], "user_id": "customer-42"})
    assert ok.status_code == 200, ok.text
    assert _reward(server, {"event_id": ok.json()["event_id"], "reward": 0}).status_code == 200
    assert server.stop() == STOPPED
    db = DecisionStore(url)
    assert db.event_ids() == [ok.json()["event_id"]]
    stored = db.decisions()
    assert (
        stored["user_key"].to_list() == hash_ids(pl.Series(["customer-42"]), key.encode()).to_list()
    )
    for part in tmp_path.glob("team.db*"):  # the database, its WAL and shared memory
        assert b"customer-42" not in part.read_bytes()
    assert db.rewards()["reward"].to_list() == [0.0]
    db.close()
