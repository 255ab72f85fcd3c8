"""The HTTP service: the whole funnel per request, live events, new items, similar items, health,
Prometheus metrics, a web page, and a new artifact version swapped in while serving.

Endpoints are ``async`` and do their (sub-millisecond to few-millisecond) work on the event loop,
one piece of work at a time per process: PyTorch and FAISS run single-threaded on the request path
anyway, and nothing needs a lock. Recommendation requests read off the sockets together are
answered together (``recfunnel.serving.batching``), which costs less per request under load.
Loading a new version runs in a worker thread; the swap itself is one reference assignment
between two requests. Each process follows its artifact directory
(``recfunnel.serving.versions``); ``serve --workers N`` runs N such processes on one port
(``recfunnel.serving.workers``).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import math
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess,
)
from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_core import to_json
from starlette.routing import Match

import recfunnel
from recfunnel.artifacts import version_stamp
from recfunnel.errors import ConflictError, NotFoundError, RecfunnelError, StaleError
from recfunnel.serving.batching import Batcher
from recfunnel.serving.online import Answer
from recfunnel.serving.service import Service, StoreConfig
from recfunnel.serving.versions import Pointer, wanted

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01,
                   0.025, 0.05, 0.1, 0.5)
MAX_K = 100
FOLLOW_SECONDS = 0.5  # how often a process looks for a new artifact version
ADD_ATTEMPTS = 5  # POST /items racing other processes' additions: tries before a 409
log = logging.getLogger(__name__)


class EventIn(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    type: Literal["watch", "rating"] = "watch"
    value: float | None = Field(None, ge=0, le=10, allow_inf_nan=False)
    timestamp: int | None = Field(None, ge=0, le=2**62, description="Epoch seconds; default now.")

    @model_validator(mode="after")
    def _rating_has_value(self) -> EventIn:
        if self.type == "rating" and self.value is None:
            raise ValueError("a rating event needs a value")
        return self


class ItemIn(BaseModel):
    item_id: str = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=500)
    genres: list[str] = Field(default_factory=list, max_length=50)
    year: int | None = Field(None, ge=1800, le=2200)


USER_ID_PARAMETER = {"name": "user_id", "in": "path", "required": True,
                     "schema": {"type": "string", "title": "User Id"}}


class RecommendationQuery(BaseModel):
    """The recommendations endpoint's query string, validated in one call (the same rules and
    the same 422 on a mistake as FastAPI's parameter by parameter validation)."""

    k: int = Field(10, ge=1, le=MAX_K, description="Length of the final list.")
    age: int | None = Field(None, ge=0, le=150, description="For a user the system has not seen.")
    gender: str | None = Field(None, max_length=20)
    occupation: str | None = Field(None, max_length=100)
    zip: str | None = Field(None, max_length=20)
    funnel: bool = Field(False, description="Also return the ranked candidates.")

    @classmethod
    def of(cls, request: Request) -> RecommendationQuery:
        try:
            return cls.model_validate(dict(request.query_params))
        except ValidationError as err:
            raise RequestValidationError(
                [{**e, "loc": ("query", *e["loc"])} for e in err.errors()]) from None

    @classmethod
    def openapi_parameters(cls) -> list[dict[str, Any]]:
        """The fields as OpenAPI query parameters (the docs FastAPI would write for them)."""
        return [{"name": name, "in": "query", "required": False,
                 "description": field.get("description", ""),
                 "schema": {k: v for k, v in field.items() if k != "description"}}
                for name, field in cls.model_json_schema()["properties"].items()]


class Item(BaseModel):
    item_id: str
    title: str
    genres: list[str]
    year: int | None
    rank: int
    score: float | None


class RecommendedItem(Item):
    explanation: dict[str, Any] = Field(
        description="Its candidate source, retrieval and ranking scores, and what each "
                    "re-ranking rule did to it.")


class Recommendations(BaseModel):
    """The recommendations endpoint's answer (its documentation: the endpoint writes the JSON
    itself)."""

    user_id: str
    known_user: bool
    cold_start: Literal["demographics", "popular"] | None
    candidates: int = Field(description="Candidates the ranking model scored.")
    batch: int = Field(description="Requests answered together with this one.")
    items: list[RecommendedItem]
    latency_ms: dict[str, float] = Field(description="Time per funnel stage.")
    ranked: list[Item] | None = Field(None, description="The ranked candidates (funnel=true).")


class Reload(BaseModel):
    artifacts: str | None = Field(None, description="Artifact directory; default: the current one.")


def create_app(artifacts: Path, store: StoreConfig | None = None,
               shared: Path | None = None) -> FastAPI:
    """The service over ``artifacts`` (a directory written by ``recfunnel fit``). ``shared``: a
    directory the worker processes of one server share (``serve --workers``)."""
    store = store or StoreConfig()
    pointer = Pointer(shared) if shared else None
    loading = asyncio.Lock()  # one load at a time per process

    async def load(path: Path | None = None) -> Service:
        """Load ``path`` (default: the version the directories name now) in a worker thread and
        swap it in; returns the service that serves from then on."""
        async with loading:
            old = service()
            path = path or wanted(old.system.path, old.system.stamp, pointer)
            if path is None:
                return old
            new = await run_in_threadpool(Service.load, path, old.store_config)
            app.state.service = new
            old.close()
            del old
            _freeze_heap()
            return new

    async def follow() -> None:
        failed = None  # a version that would not load is not tried again until it changes
        while True:
            await asyncio.sleep(FOLLOW_SECONDS)
            current = service().system
            target = wanted(current.path, current.stamp, pointer)
            version = target and (target, version_stamp(target))
            if version is None or version == failed:
                continue
            try:
                await load()
            except Exception:  # a broken version: keep serving the one loaded
                failed = version
                log.exception("could not load %s; still serving %s", target, current.path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        follower = asyncio.create_task(follow())
        yield
        follower.cancel()
        app.state.service.close()

    app = FastAPI(title="recfunnel", version=recfunnel.__version__, lifespan=lifespan,
                  description="A YouTube-style recommendation funnel: retrieval, ranking, "
                              "re-ranking, with live events and cold start.")
    app.state.service = Service.load(Path(artifacts), store)
    _freeze_heap()
    registry = CollectorRegistry()
    stage_seconds = Histogram("recfunnel_stage_seconds", "Time per funnel stage in a request",
                              ["stage"], registry=registry, buckets=LATENCY_BUCKETS)
    request_seconds = Histogram("recfunnel_request_seconds", "Request latency by endpoint",
                                ["endpoint", "status"], registry=registry,
                                buckets=LATENCY_BUCKETS)
    events_total = Counter("recfunnel_events", "Events stored", ["type"], registry=registry)
    stage_timer = functools.cache(stage_seconds.labels)  # labels() costs microseconds a call

    def service() -> Service:
        return app.state.service

    def answer(requests: list[tuple[str, int, dict[str, Any]]]) -> list[tuple[Service, Answer]]:
        s = service()  # the version that answered describes the items, even after a swap
        return [(s, a) for a in s.recommend_many(requests)]

    batcher = Batcher(answer)

    @app.exception_handler(RecfunnelError)
    async def _user_mistake(request: Request, err: RecfunnelError) -> JSONResponse:
        status = 404 if isinstance(err, NotFoundError) else 409 if isinstance(
            err, ConflictError) else 400
        return JSONResponse({"detail": str(err)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        s = service()
        return {"status": "ok", "artifacts": str(s.system.path), "process": os.getpid(),
                "created": s.system.manifest.get("created"), "store": s.store_config.kind,
                "users": s.system.dataset.n_users, "items": s.system.dataset.n_items}

    # the path and query parameters are read from the request and documented by hand: FastAPI's
    # parameter solving costs tens of microseconds a request (the path parameter alone 11);
    # requests reach it through _Shortcut, not the router
    @app.get("/users/{user_id}/recommendations", response_model=Recommendations,
             openapi_extra={"parameters": [USER_ID_PARAMETER,
                                           *RecommendationQuery.openapi_parameters()]})
    async def recommendations(request: Request) -> Response:
        """The whole funnel: store -> user tower -> ANN and other sources -> ranking ->
        re-ranking. An unknown user gets a cold-start list from the demographics given, or the
        most popular items."""
        user_id, query = request.path_params["user_id"], RecommendationQuery.of(request)
        demographics = {name: value for name in ("age", "gender", "occupation", "zip")
                        if (value := getattr(query, name)) is not None}
        # requests that arrive together are answered together (recfunnel.serving.batching)
        s, answer = await batcher.submit((user_id, query.k, demographics))
        for stage, seconds in answer.seconds.items():
            stage_timer(stage).observe(seconds)
        body = {"user_id": user_id, "known_user": answer.cold_start is None,
                "cold_start": answer.cold_start, "candidates": answer.n_candidates,
                "batch": answer.batch,
                "items": [{"rank": rank, **s.describe(item), "score": _finite(score),
                           "explanation": why}
                          for rank, (item, score, why) in enumerate(zip(
                              answer.final.items.tolist(), answer.final.scores.tolist(),
                              answer.final.explanations), start=1)],
                "latency_ms": {stage: round(v * 1000, 3) for stage, v in answer.seconds.items()}}
        if query.funnel:
            top = answer.ranked.items[0][:50]
            body["ranked"] = [{"rank": r, **s.describe(int(i)),
                               "score": _finite(float(answer.ranked.scores[0][r - 1]))}
                              for r, i in enumerate(top[top >= 0].tolist(), start=1)]
        # the body is built from the funnel's own values: serialised without validating it again
        return Response(to_json(body), media_type="application/json")

    @app.get("/users/{user_id}/history")
    async def history(user_id: str, n: int = Query(20, ge=1, le=1000)) -> dict[str, Any]:
        s = service()
        user = s.user_index(user_id)
        if user is None:
            raise HTTPException(404, f"unknown user {user_id!r}")
        return {"user_id": user_id,
                "items": [s.describe(int(i)) for i in s.store.recent_items(user, n)[::-1]]}

    @app.post("/events", status_code=201)
    async def events(event: EventIn) -> dict[str, Any]:
        """Stored durably before this answers; the user's next list already reflects it."""
        s = service()
        stored = s.add_event(event.user_id, event.item_id, event.type, event.value,
                             event.timestamp if event.timestamp is not None else int(time.time()))
        events_total.labels(event.type).inc()
        return {"stored": True, **stored}

    @app.post("/items", status_code=201)
    async def items(item: ItemIn) -> dict[str, Any]:
        """A new item, embedded from its content by the item tower and retrievable at once."""
        for attempt in range(ADD_ATTEMPTS):
            s = await load()  # the version all workers serve now (a no-op when it is this one)
            try:
                # on the event loop, not in a thread: the catalog changes while no request runs
                index = s.add_item(item.item_id, item.title, item.genres, item.year)
                return {"added": True, **s.describe(index)}
            except StaleError:  # another process changed the catalog since: load its version
                if attempt == ADD_ATTEMPTS - 1:
                    raise

    @app.get("/items/{item_id}/similar")
    async def similar(item_id: str, k: int = Query(10, ge=1, le=MAX_K)) -> dict[str, Any]:
        s = service()
        items, scores = s.similar(item_id, k)
        return {"item_id": item_id, "items": [{**s.describe(int(i)), "score": _finite(float(v))}
                                              for i, v in zip(items, scores)]}

    @app.get("/metrics")
    async def metrics() -> Response:
        """This process's metrics, or with several workers all of theirs, summed."""
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            summed = CollectorRegistry()
            multiprocess.MultiProcessCollector(summed)
            return Response(generate_latest(summed), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload")
    async def reload(body: Reload) -> dict[str, Any]:
        """Load an artifact version in a worker thread, then swap it in between two requests;
        the server's other worker processes follow within a second or two."""
        path = Path(body.artifacts) if body.artifacts else service().system.path
        new = await load(path)
        if pointer:
            pointer.write(path)
        return {"reloaded": True, "artifacts": str(path),
                "created": new.system.manifest.get("created")}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("recfunnel.serving").joinpath("page.html").read_text()

    # the last added runs first: the timer sees every request, the shortcut's included
    app.add_middleware(_Shortcut, route=next(
        r for r in app.routes if getattr(r, "endpoint", None) is recommendations),
        handlers=app.exception_handlers)
    app.add_middleware(_RequestTimer, histogram=request_seconds)
    return app


class _Shortcut:
    """The recommendations endpoint called straight from the middleware, past Starlette's
    router and FastAPI's request handling (exit stacks, dependency solving), which it does not
    use: it reads its parameters from the request and writes its own JSON. The endpoint without
    the funnel took 96-109 us a request in process against 140-167 through the router
    (``bench/endpoint_overhead.py``, BENCHMARKS.md). The route is matched by its own rules and
    stays in the app, where the OpenAPI document describes it; its errors go to the app's
    exception handlers, as they would from the router."""

    def __init__(self, app: Any, route: APIRoute, handlers: dict[Any, Any]):
        self.app, self.route, self.handlers = app, route, handlers

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match, child = self.route.matches(scope) if scope["type"] == "http" else (None, {})
        if match is not Match.FULL:  # another route, or this one's path with another method
            await self.app(scope, receive, send)
            return
        scope.update(child)
        request = Request(scope, receive)
        try:
            response = await self.route.endpoint(request)
        except Exception as err:
            handler = next((self.handlers[kind] for kind in type(err).__mro__
                            if kind in self.handlers), None)
            if handler is None:
                raise
            response = await handler(request, err)
        await response(scope, receive, send)


class _RequestTimer:
    """Request latency by route and status, as plain ASGI (Starlette's ``BaseHTTPMiddleware``
    costs about a millisecond per request)."""

    def __init__(self, app: Any, histogram: Histogram):
        self.app = app
        self.timer = functools.cache(lambda route, status: histogram.labels(route, str(status)))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def record(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.timer(route, status[0]).observe(time.perf_counter() - start)


def _freeze_heap() -> None:
    """Move what is alive now (the loaded version, the libraries) out of the garbage collector's
    reach: a full collection in a loaded server walks some 270,000 objects, 75 ms during which no
    request is answered (measured on ML-100K). Earlier frozen objects are thawed first, so a
    replaced version's reference cycles are still collected."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None
