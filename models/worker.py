"""The recommender worker: an HTTP API over a ``Recommender`` and a ``RecommendationCache``.

    GET /recommendations/{user_id}?k=10&exclude_seen=true&exclude_items=..&include_genres=..
                                        &exclude_genres=..      (422 naming the bad parameter)
    GET /items/trending?k=20
    GET /items/popular?k=20
    GET /users/{user_id}/features       404 for a user never seen
    GET /pipeline                       shards, lag, throughput, freshness (404 when not wired)
    GET /dashboard/                     the live dashboard (models/dashboard/)
    GET /healthz
    GET /metrics                        Prometheus text format
    POST /events                        HTTP ingest (models/ingest.py); 503 when not configured

Everything is injected: the composition root builds the DynamoDB client, the store, the
recommender and the cache, and owns (closes) them; the app only uses them.

Degradation, never a 5xx for it: when the cache fails (or is slower than its timeout, or failed
moments ago: ``models.cache``), answers are computed uncached, the cache asked once; when the
online store is slower than ``deadline_seconds`` or fails, the answer is the last popular list
the worker read (filters applied), not cached. Either way the answer says ``degraded: true`` and
why (``degraded_reasons``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path as FilePath
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, HTTPException, Path, Query, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.types import ASGIApp

from feature_store.definitions import FEATURES
from feature_store.features import Popular, user_key
from feature_store.online import FeatureStore
from feature_store.transforms import trending_score
from models.cache import CacheError, CacheUnavailable, Lookup, RecommendationCache
from models.filters import Filters
from models.hit_path import (
    DEFAULT_K,
    MAX_FILTER_VALUES,
    MAX_K,
    Asked,
    CachedAnswers,
    answer_body,
    looked_up,
    variant,
)
from models.ingest import IngestConfig, ingest_router
from models.recommender import Recommendation, Recommender
from models.request_ids import RequestIdMiddleware
from models.worker_metrics import FeatureReadsCollector, RequestTimer, WorkerMetrics
from producers.events import ID_PATTERN, MAX_ID_CHARS

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_SECONDS = 0.25
STARTUP_TIMEOUT_SECONDS = 10.0
# httptools (the C parser of Node's llhttp) parses a request in a fraction of h11's time
HTTP_PARSER = "httptools"
DASHBOARD = FilePath(__file__).with_name("dashboard")  # plain HTML, CSS and a script: no build step
USER_FEATURES = tuple(f.name for f in FEATURES if f.entity == "user")

ItemId = Annotated[str, Query(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
Names = Annotated[list[str], Query(max_length=MAX_FILTER_VALUES)]


class RecommendationOut(BaseModel):
    """One recommended item on the wire."""

    item_id: str
    score: float
    reason: str


class RecommendationsResponse(BaseModel):
    """The answer of ``GET /recommendations/{user_id}``."""

    user_id: str
    k: int
    recommendations: list[RecommendationOut]
    cached: bool  # served from the cache, not computed for this request
    degraded: bool = False  # not the full answer, or not through the usual path: see reasons
    degraded_reasons: list[str] = []


class TrendingItem(BaseModel):
    """One item of a global list: trending (last hour against its 7-day hourly mean) or
    popular (its interactions)."""

    item_id: str
    score: float


class TrendingResponse(BaseModel):
    """The answer of ``GET /items/trending`` and ``GET /items/popular``."""

    items: list[TrendingItem]
    degraded: bool = False
    degraded_reasons: list[str] = []


class ShardStatus(BaseModel):
    """One shard as its lease row says: who reads it, how far behind, how fast."""

    shard_id: str
    owner: str | None = None
    lag_ms: int | None = None  # MillisBehindLatest at the holder's last report
    events_per_s: float | None = None
    checkpoint_age_s: float | None = None


class FreshnessHistogram(BaseModel):
    """Events by how long after their event time their features were written (the last five
    minutes of the consumers' reports)."""

    bounds_s: list[float | None]  # upper bounds; None: no bound
    counts: list[int]


class PipelineResponse(BaseModel):
    """The answer of ``GET /pipeline``: the consumers' shards, throughput and freshness."""

    shards: list[ShardStatus]
    events_per_s: float
    freshness: FreshnessHistogram


# what the composition root gives the worker to answer GET /pipeline
PipelineStatus = Callable[[], Awaitable[PipelineResponse]]


class UserFeaturesResponse(BaseModel):
    """The answer of ``GET /users/{user_id}/features``: each user feature's value now."""

    user_id: str
    features: dict[str, Any]


class WorkerApp(FastAPI):
    """The worker's FastAPI app, with ``hit_path`` (``models.hit_path.CachedAnswers``) wrapped
    around its whole middleware stack: Starlette always puts its error middleware outermost."""

    hit_path: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        """FastAPI's stack, inside the hit path when there is one."""
        stack = super().build_middleware_stack()
        return stack if self.hit_path is None else self.hit_path(stack)


def create_app(
    recommender: Recommender,
    cache: RecommendationCache,
    ttl_seconds: float,
    ingest: IngestConfig | None = None,
    *,
    store: FeatureStore | None = None,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    metrics: WorkerMetrics | None = None,
    pipeline: PipelineStatus | None = None,
) -> FastAPI:
    """The worker's FastAPI app; answers are cached per user, ``k`` and filters for
    ``ttl_seconds`` and go stale when the user's features change.

    ``store`` serves ``/users/{id}/features`` (404 for every user without it), ``pipeline``
    ``/pipeline`` (404 without it). ``POST /events``
    publishes through ``ingest``; without it the route answers 503.
    """
    app = WorkerApp(title="streamrec recommender", version="0.1.0")
    app.include_router(ingest_router(ingest))
    metrics = metrics or WorkerMetrics()
    metrics.registry.register(FeatureReadsCollector(recommender))
    app.state.metrics = metrics

    async def deadline(awaitable: Awaitable[Any]) -> Any:
        async with asyncio.timeout(deadline_seconds):  # in this task (wait_for makes one more)
            return await awaitable

    @app.get("/recommendations/{user_id}", response_model=RecommendationsResponse)
    async def recommendations(
        user_id: UserId,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = DEFAULT_K,
        exclude_seen: bool = True,
        exclude_items: Annotated[list[ItemId], Query(max_length=MAX_FILTER_VALUES)] = [],  # noqa: B006
        include_genres: Names = [],  # noqa: B006
        exclude_genres: Names = [],  # noqa: B006
    ) -> Response:
        """Up to ``k`` recommendations for ``user_id``, best first, each with its reason."""
        filters = Filters(
            exclude_seen,
            frozenset(exclude_items),
            frozenset(include_genres),
            frozenset(exclude_genres),
        )
        name = variant(k, filters, recommender.model_version)
        # the hit path answers what it reads itself: this is a request it left to the route
        lookup = await looked_up(cache, user_id, name)
        outcome = "error" if lookup is None else "miss" if lookup.recs is None else "hit"
        metrics.cache.labels(outcome).inc()
        if lookup is not None and lookup.recs is not None:
            return _answer(user_id, k, lookup.recs, cached=True, reasons=[])
        body = await computed(Asked(user_id, k, filters), name, lookup)
        return Response(body, media_type="application/json")

    async def computed(asked: Asked, name: str, lookup: Lookup | None) -> bytes:
        """The answer computed from the features (the cache missed; ``lookup`` is None when it
        failed), cached when it came from them, as JSON; degraded, never an error, when the
        cache failed or the store is slow or failing."""
        user_id, k, filters = asked
        reasons: list[str] = []
        if lookup is None:
            reasons.append("cache unavailable: computed without it")
            metrics.degraded.labels("cache_unavailable").inc()
        try:
            recs: list[Recommendation] = await deadline(recommender.recommend(user_id, k, filters))
        except TimeoutError:
            recs = recommender.fallback(k, filters)
            reasons.append(f"features slower than {deadline_seconds:g} s: popular items")
            metrics.degraded.labels("features_timeout").inc()
        except Exception as exc:  # the store failed: an answer still beats a 5xx
            log.warning("reading %s's features failed; serving popular", user_id, exc_info=True)
            recs = recommender.fallback(k, filters)
            reasons.append(f"features unavailable ({type(exc).__name__}): popular items")
            metrics.degraded.labels("features_error").inc()
        payload = [r.as_dict() for r in recs]
        if lookup is not None and not reasons:  # computed from the features: worth caching
            await _cache_set(cache, user_id, name, payload, ttl_seconds, lookup)
        return answer_body(user_id, k, payload, cached=False, reasons=reasons)

    # outermost: cached answers skip FastAPI's stack and the route's parameter handling, and so
    # do the misses of requests it read (computed as the route computes them)
    app.hit_path = partial(
        CachedAnswers,
        cache=cache,
        model_version=lambda: recommender.model_version,
        metrics=metrics,
        compute=computed,
    )

    async def global_row() -> tuple[Popular, list[str]]:
        try:
            return await deadline(recommender.popular()), []
        except Exception as exc:  # slow or failing store: the last copy read, flagged
            cause = "features_timeout" if isinstance(exc, TimeoutError) else "features_error"
            metrics.degraded.labels(cause).inc()
            reason = f"features unavailable ({type(exc).__name__}): last list read"
            return recommender.last_popular(), [reason]

    @app.get("/items/trending", response_model=TrendingResponse)
    async def trending(k: Annotated[int, Query(ge=1, le=MAX_K)] = 20) -> TrendingResponse:
        """The ``k`` most trending items now (score above 1: busier than their usual hour)."""
        popular, reasons = await global_row()
        now = int(time.time() * 1000)
        scored = [(c.item_id, trending_score(c.recent, c.week, now)) for c in popular.trending]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        items = [TrendingItem(item_id=i, score=round(s, 6)) for i, s in scored[:k] if s > 1.0]
        return TrendingResponse(items=items, degraded=bool(reasons), degraded_reasons=reasons)

    @app.get("/items/popular", response_model=TrendingResponse)
    async def popular_items(k: Annotated[int, Query(ge=1, le=MAX_K)] = 20) -> TrendingResponse:
        """The ``k`` items with the most interactions, all time (score: their interactions)."""
        popular, reasons = await global_row()
        items = [TrendingItem(item_id=i, score=float(n)) for i, n in popular.items[:k]]
        return TrendingResponse(items=items, degraded=bool(reasons), degraded_reasons=reasons)

    @app.get("/users/{user_id}/features", response_model=UserFeaturesResponse)
    async def user_features(user_id: UserId) -> UserFeaturesResponse:
        """Every user feature's value now (``null`` for a value past its TTL)."""
        if store is None:
            raise HTTPException(404, f"user {user_id!r} not found")
        (values,) = await store.read([user_key(user_id)], USER_FEATURES)
        if values is None:
            raise HTTPException(404, f"user {user_id!r} not found")
        return UserFeaturesResponse(user_id=user_id, features=values)

    @app.get("/pipeline", response_model=PipelineResponse)
    async def pipeline_status() -> PipelineResponse:
        """Per-shard owner, lag, throughput and checkpoint age, and recent freshness."""
        if pipeline is None:
            raise HTTPException(404, "this worker was started without the pipeline's status")
        try:
            return await deadline(pipeline())
        except Exception as exc:
            raise HTTPException(503, f"pipeline status unavailable: {type(exc).__name__}") from exc

    app.mount("/dashboard", StaticFiles(directory=DASHBOARD, html=True), name="dashboard")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok"}

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """The worker's metrics in the Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RequestTimer, metrics=metrics)
    # added last, so outermost: uvicorn's access line is logged inside it, with the request id
    app.add_middleware(RequestIdMiddleware)
    return app


def _answer(
    user_id: str, k: int, recs: list[dict[str, Any]], cached: bool, reasons: list[str]
) -> Response:
    """A ``RecommendationsResponse`` as JSON, written directly: the lists come from the
    recommender or the cache in that shape already, and validating them again on every answer
    (FastAPI's ``response_model``) would cost a cached answer a good part of its time."""
    body = answer_body(user_id, k, recs, cached, reasons)
    return Response(body, media_type="application/json")


async def _cache_set(
    cache: RecommendationCache,
    user_id: str,
    variant: str,
    recs: list[dict],
    ttl_seconds: float,
    lookup: Lookup,
) -> None:
    try:
        await cache.set(user_id, variant, recs, ttl_seconds, lookup.generation)
    except CacheUnavailable:
        pass  # failed moments ago, reported then
    except CacheError:
        log.warning("recommendation cache write failed; answer not cached", exc_info=True)


async def serve(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 8080,
    log_level: str = "info",
    reuse_port: bool = False,
) -> None:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM (or until cancelled); uvicorn's lines go
    through the root logger (``infra.logs``: text or JSON, with the request id). With
    ``reuse_port``, other processes may serve the same port (``SO_REUSEPORT``: the kernel
    spreads connections over them)."""
    sock = listening_socket(host, port, reuse_port)
    try:
        config = uvicorn.Config(app, log_level=log_level, log_config=None, http=HTTP_PARSER)
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()


@asynccontextmanager
async def running(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    reuse_port: bool = False,
) -> AsyncIterator[str]:
    """Serve ``app`` in the background of the current event loop; yields its base URL.

    ``port=0`` picks a free port. The socket is bound here, before uvicorn starts, so a port in
    use raises ``OSError`` from this call instead of exiting the process from inside uvicorn.
    Leaving the block asks the server to exit and waits for it.
    """
    sock = listening_socket(host, port, reuse_port)
    try:
        bound_host, bound_port = sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level=log_level, log_config=None, http=HTTP_PARSER)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await _wait_started(server, task)
            yield f"http://{bound_host}:{bound_port}"
        finally:
            server.should_exit = True
            await task
    finally:
        sock.close()


def listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` whose connections send small writes at once
    (``reuse_port``: ``SO_REUSEPORT``, shared with other processes that set it).

    uvicorn writes a response's head and body separately. asyncio turns Nagle's algorithm off
    only on sockets whose ``proto`` is TCP, and ``socket.socket(AF_INET, SOCK_STREAM)`` has
    ``proto`` 0: the body then waits for the client's delayed ACK (40 ms on Linux) on every
    keep-alive request. Both the protocol and ``TCP_NODELAY`` (inherited on accept) are set.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError("the recommender API stopped before it started")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the recommender API did not start in {STARTUP_TIMEOUT_SECONDS}s")
        await asyncio.sleep(0.01)
