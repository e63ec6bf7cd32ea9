"""The HTTP service: rank and reward endpoints over a durable decision store.

Endpoints (JSON in, JSON out; errors are ``{"error": "<one line naming the field>"}``):

* ``POST /rank`` — ``{"context": {<field>: value, …}, "candidates": [variant ids]
  (optional), "user_id": "…" (optional; stored only as a keyed hash)}`` →
  ``{"event_id", "action", "propensity", "probabilities": {variant: p}, "model_version"}``
  (and ``"group"`` with a holdout). The decision record is committed to the store before
  the answer is sent (:mod:`bandits.serve.store`).
* ``POST /reward`` — ``{"event_id", "reward", "occurred_at" (optional ISO time, default
  now)}`` → ``{"event_id", "status": "recorded"}``; an unknown event id is 404, a second
  reward for one 409.
* ``GET /health`` — mode, model versions, counts, learning state.

Bad requests get a 4xx status and one line naming the field: 400 (not JSON), 413 (body over
``max_body_bytes``), 422 (missing / unknown field, wrong type, unknown level or variant), 404,
409; a store that cannot write is 503 (the decision is not answered). The server keeps
serving after any of them.

:func:`open_service` wires a :class:`Service` (store, ranker, learner) from a deployed
policy; :func:`create_app` is the FastAPI application over it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bandits.deploy.bundle import DeployedPolicy
from bandits.deploy.decide import Holdout, batch_id, utc_now
from bandits.errors import ConfigError
from bandits.serve.learner import LEARN_MODES, OnlineLearner, OnlineSettings
from bandits.serve.ranker import Ranker, RequestError
from bandits.serve.store import (
    DecisionStore,
    StoreConflict,
    StoreError,
    StoreNotFound,
    catalog_text,
    encode_schema,
)

#: Largest request body accepted by default (bytes).
MAX_BODY_BYTES = 65_536
#: A reward's ``occurred_at`` may be this far ahead of the server's clock (clock skew).
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
REWARD_KEYS = ("event_id", "reward", "occurred_at")
MODES = ("live", "shadow")

__all__ = ["MAX_BODY_BYTES", "MODES", "Service", "create_app", "open_service"]


@dataclass
class Service:
    """What the app serves: the store, the ranker, the optional learner and settings."""

    store: DecisionStore
    ranker: Ranker
    mode: str
    learner: OnlineLearner | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    start: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    _pending: list[tuple[Any, asyncio.Future[Any]]] = field(default_factory=list)
    _scheduled: bool = False

    async def rank(self, parsed: Any) -> dict[str, Any]:
        """Decide for a checked request and return its answer once its record is committed.

        Requests that arrive in the same turn of the event loop are decided as one batch
        (:meth:`Ranker.rank_parsed`: the feature transform and the draw run once for all)
        and stored in one transaction: under load, the per-request overhead of the
        dataframe work and of the fsync is shared."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((parsed, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        answer, stored = await fut
        try:
            await asyncio.wrap_future(stored)
        except StoreError as exc:
            raise RequestError(503, f"store: the decision could not be recorded ({exc})") from None
        return answer  # type: ignore[no-any-return]

    def _flush(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        try:
            results = self.ranker.rank_parsed([p for p, _ in batch])
        except Exception:  # decide one by one: only the request at fault fails
            for parsed, fut in batch:
                try:
                    ((record, answer),) = self.ranker.rank_parsed([parsed])
                    fut.set_result((answer, self.store.submit_decisions([record])))
                except Exception as exc:
                    fut.set_exception(exc)
            return
        stored = self.store.submit_decisions([r for r, _ in results])
        for (_, fut), (_, answer) in zip(batch, results, strict=True):
            fut.set_result((answer, stored))

    def open(self) -> None:
        self.store.start()
        if self.learner is not None:
            self.learner.start()

    def close(self) -> None:
        if self.learner is not None:
            self.learner.stop()
        self.store.close()

    def health(self) -> dict[str, Any]:
        counts = self.store.counts()
        out: dict[str, Any] = {
            "status": "ok",
            "mode": self.mode,
            "model_version": self.ranker.acting.model_version,
            "start": self.start,
            "batch": self.ranker.batch,
            "decisions": counts.decisions,
            "rewards": counts.rewards,
            "learn": "online" if self.learner is not None else "frozen",
        }
        if self.ranker.shadow is not None:
            out["shadow_model_version"] = self.ranker.shadow.model_version
        if self.learner is not None:
            out["learned"] = counts.learned
            out["updates"] = self.learner.updates
            out["learn_error"] = self.learner.last_error
        return out


def open_service(
    model: DeployedPolicy,
    store: str | os.PathLike[str],
    *,
    seed: int,
    mode: str = "live",
    baseline: DeployedPolicy | None = None,
    holdout: Holdout | None = None,
    learn: str = "frozen",
    online: OnlineSettings | None = None,
    sync: str = "full",
    id_key: bytes | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Service:
    """Open the store, record this start and build the ranker (and learner).

    ``mode="live"``: ``model`` acts (with the optional ``holdout``). ``mode="shadow"``:
    ``baseline`` acts and ``model`` is the candidate recorded beside it. ``learn="online"``
    learns ``model`` (the acting policy, or the candidate) with ``online`` settings.

    Raises:
        ConfigError: an unknown mode / learn setting, no baseline in shadow mode, a store
            holding another catalog or record layout, or bad online settings.
    """
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: must be one of {', '.join(MODES)}")
    if learn not in LEARN_MODES:
        raise ConfigError(f"learn={learn!r}: must be one of {', '.join(LEARN_MODES)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ConfigError(f"seed={seed!r}: must be a non-negative integer")
    if isinstance(max_body_bytes, bool) or int(max_body_bytes) < 256:
        raise ConfigError(f"max_body_bytes={max_body_bytes!r}: must be an integer ≥ 256")
    if mode == "shadow" and baseline is None:
        raise ConfigError(
            "mode=shadow needs a baseline that acts (baseline.model or baseline.name)"
        )
    acting = baseline if mode == "shadow" and baseline is not None else model
    db = DecisionStore(store, sync=sync)
    try:
        started = utc_now()
        settings = {"mode": mode, "learn": learn, "seed": int(seed)}
        start = db.record_start(acting.model_version, int(seed), settings)
        batch = batch_id(acting.model_version, int(seed), started, f"serve:{db.target}:{start}")
        db.set_start_batch(start, batch)
        ranker = Ranker(
            acting,
            seed=np.random.SeedSequence([int(seed), start]),
            batch=batch,
            holdout=holdout,
            shadow=model if mode == "shadow" else None,
            id_key=id_key,
            start=start,
        )
        db.ensure_meta(
            {
                "record_schema": json.dumps(encode_schema(ranker.record_schema())),
                "catalog": catalog_text(ranker._decider.catalog),
                "features": json.dumps(acting.spec.features.to_dict(), sort_keys=True),
            },
            {
                "record_schema": "decision record layout (mode, holdout, context fields)",
                "catalog": "catalog",
                "features": "feature schema",
            },
        )
        learner = None
        if learn == "online":
            chosen = online or OnlineSettings()
            if not str(chosen.snapshots).strip():
                chosen = OnlineSettings(
                    chosen.batch, chosen.interval, chosen.window, snapshot_folder(db.target)
                )
            learner = OnlineLearner(
                db, ranker, "shadow" if mode == "shadow" else "acting", model, chosen
            )
    except BaseException:
        db.close()
        raise
    return Service(
        store=db,
        ranker=ranker,
        mode=mode,
        learner=learner,
        max_body_bytes=int(max_body_bytes),
        start=start,
        info={"store": db.target, "sync": sync},
    )


# ---------------------------------------------------------------------- request bodies


async def _json_body(request: Request, limit: int) -> Any:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(
            413, f"body: {int(length):,} bytes, over the {limit:,} this server accepts"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body: over the {limit:,} bytes this server accepts")
        chunks.append(chunk)
    if not size:
        raise RequestError(400, "body: empty (expected a JSON object)")
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        detail = f"{exc.msg} at position {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise RequestError(400, f"body: not valid JSON ({detail or 'undecodable'})") from None


def _reward_fields(body: Any) -> tuple[str, float, dt.datetime | None]:
    if not isinstance(body, dict):
        raise RequestError(422, "body: expected a JSON object with event_id and reward")
    unknown = [k for k in body if k not in REWARD_KEYS]
    if unknown:
        raise RequestError(
            422, f"{unknown[0]}: unknown field (a reward has {', '.join(REWARD_KEYS)})"
        )
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise RequestError(
            422,
            "event_id: required, the id /rank returned"
            if event_id is None
            else "event_id: expected a non-empty string",
        )
    reward = body.get("reward")
    if reward is None:
        raise RequestError(422, "reward: required, a number")
    if isinstance(reward, bool) or not isinstance(reward, int | float):
        raise RequestError(422, f"reward: expected a number, got {type(reward).__name__}")
    if not math.isfinite(float(reward)):
        raise RequestError(422, "reward: expected a finite number")
    when = body.get("occurred_at")
    occurred = None
    if when is not None:
        if not isinstance(when, str):
            raise RequestError(
                422, "occurred_at: expected an ISO time such as 2026-03-01T09:00:00Z"
            )
        try:
            occurred = dt.datetime.fromisoformat(when)
        except ValueError:
            raise RequestError(
                422, f"occurred_at: {when[:40]!r} is not an ISO time (e.g. 2026-03-01T09:00:00Z)"
            ) from None
        if occurred.tzinfo is not None:
            occurred = occurred.astimezone(dt.UTC).replace(tzinfo=None)
    return event_id, float(reward), occurred


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


# ---------------------------------------------------------------------------- the app


def create_app(service: Service) -> FastAPI:
    """The FastAPI application serving ``service`` (opened on startup, closed on
    shutdown)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.open()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="bandits decision service",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(RequestError)
    async def _bad_request(_request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.post("/rank")
    async def rank(request: Request) -> JSONResponse:
        body = await _json_body(request, service.max_body_bytes)
        return JSONResponse(await service.rank(service.ranker.parse(body)))

    @app.post("/reward")
    async def reward(request: Request) -> JSONResponse:
        body = await _json_body(request, service.max_body_bytes)
        event_id, value, occurred = _reward_fields(body)
        received = utc_now()
        if occurred is not None and occurred > received + FUTURE_TOLERANCE:
            raise RequestError(
                422,
                f"occurred_at: {occurred.isoformat()} is in the future (server time "
                f"{received.isoformat(timespec='seconds')} UTC)",
            )
        fut = service.store.submit_reward(event_id, value, occurred or received, received)
        try:
            await asyncio.wrap_future(fut)
        except StoreNotFound:
            return _error(404, f"event_id: no decision {event_id[:80]!r} in this store")
        except StoreConflict as exc:
            return _error(
                409,
                f"event_id: {event_id[:80]!r} already has a reward (received {exc.args[0]} "
                "UTC); one reward per decision",
            )
        except StoreError as exc:
            return _error(503, f"store: the reward could not be recorded ({exc})")
        return JSONResponse({"event_id": event_id, "status": "recorded"})

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(service.health))

    return app


def describe(service: Service, host: str, port: int) -> str:
    """The one line the app prints once it listens."""
    shadow = (
        f", shadow candidate {service.ranker.shadow.model_version}"
        if service.ranker.shadow is not None
        else ""
    )
    learn = "online" if service.learner is not None else "frozen"
    return (
        f"serving {service.ranker.acting.model_version} ({service.mode}{shadow}, {learn}) on "
        f"http://{host}:{port} — store {service.info.get('store')} (sync "
        f"{service.info.get('sync')}), start {service.start}"
    )


def snapshot_folder(store: str) -> str:
    """The default folder of learned snapshots for a store path or URL."""
    if "://" in store:
        return str(Path.cwd() / "serve-models")
    return f"{store}.models"
