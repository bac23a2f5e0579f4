"""The recommender worker: an HTTP API over a ``Recommender`` and a ``RecommendationCache``.

    GET /recommendations/{user_id}?k=10   k in 1..100 (422 otherwise)
    GET /healthz
    POST /events                          HTTP ingest (models/ingest.py); 503 when not configured

Everything is injected: the composition root builds the DynamoDB client, the store, the
recommender and the cache, and owns (closes) them; the app only uses them. A failing cache
degrades to uncached answers instead of failing requests.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict

import uvicorn
from fastapi import FastAPI, Query
from pydantic import BaseModel

from models.cache import CacheError, RecommendationCache
from models.ingest import IngestConfig, ingest_router
from models.recommender import Recommender

log = logging.getLogger(__name__)

MAX_K = 100
STARTUP_TIMEOUT_SECONDS = 10.0


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


def create_app(
    recommender: Recommender,
    cache: RecommendationCache,
    ttl_seconds: float,
    ingest: IngestConfig | None = None,
) -> FastAPI:
    """The worker's FastAPI app; answers are cached per ``(user_id, k)`` for ``ttl_seconds``.

    ``POST /events`` publishes through ``ingest``; without it the route answers 503.
    """
    app = FastAPI(title="streamrec recommender", version="0.1.0")
    app.include_router(ingest_router(ingest))

    @app.get("/recommendations/{user_id}", response_model=RecommendationsResponse)
    async def recommendations(
        user_id: str, k: int = Query(10, ge=1, le=MAX_K)
    ) -> RecommendationsResponse:
        """Up to ``k`` recommendations for ``user_id``, best first."""
        hit = await _cache_get(cache, user_id, k)
        if hit is not None:
            items = [RecommendationOut.model_validate(r) for r in hit]
            return RecommendationsResponse(user_id=user_id, k=k, recommendations=items, cached=True)
        recs = [asdict(r) for r in await recommender.recommend(user_id, k)]
        await _cache_set(cache, user_id, k, recs, ttl_seconds)
        items = [RecommendationOut.model_validate(r) for r in recs]
        return RecommendationsResponse(user_id=user_id, k=k, recommendations=items, cached=False)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok"}

    return app


async def _cache_get(cache: RecommendationCache, user_id: str, k: int) -> list[dict] | None:
    try:
        return await cache.get(user_id, k)
    except CacheError:
        log.warning("recommendation cache read failed; computing", exc_info=True)
        return None


async def _cache_set(
    cache: RecommendationCache, user_id: str, k: int, recs: list[dict], ttl_seconds: float
) -> None:
    try:
        await cache.set(user_id, k, recs, ttl_seconds)
    except CacheError:
        log.warning("recommendation cache write failed; answer not cached", exc_info=True)


async def serve(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info"
) -> None:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM (or until cancelled)."""
    await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level)).serve()


@asynccontextmanager
async def running(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> AsyncIterator[str]:
    """Serve ``app`` in the background of the current event loop; yields its base URL.

    ``port=0`` picks a free port. The socket is bound here, before uvicorn starts, so a port in
    use raises ``OSError`` from this call instead of exiting the process from inside uvicorn.
    Leaving the block asks the server to exit and waits for it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        bound_host, bound_port = sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level=log_level, log_config=None)
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
