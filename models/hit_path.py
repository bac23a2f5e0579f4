"""The cache-hit path of ``GET /recommendations/{user_id}``: answered before FastAPI's routing.

A cached answer costs the worker one Redis MGET and a JSON write. Through FastAPI it also pays
for FastAPI's middleware stack and the route's parameter handling (six query parameters, three
of them lists, validated and converted on every request): together several times what Redis
costs (docs/decisions/0021). ``CachedAnswers`` wraps the whole app (``WorkerApp`` puts it
outside FastAPI's own middleware): it reads such a request's parameters itself, looks the answer
up, and writes it when cached, with what the rest of the stack adds to every answer (the
request id, the request's latency under its route).

It never decides anything the route would decide differently: a request it does not fully
understand (another path or method, an unknown or repeated parameter, a value outside the
route's limits, a boolean spelt other than ``true``/``false``/``1``/``0``) goes on to the route
unchanged, which validates (422 naming the field), computes, degrades and caches. A miss of a
request it read, or a failed lookup (the cache down: not asked again by the route), is computed
by ``compute``, the route's own computation (caching and degrading included), with the lookup it
made, and written here too: FastAPI's stack cost a computed answer a quarter of the worker's
time (docs/decisions/0022).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from infra.logs import correlated
from models.cache import CacheError, CacheUnavailable, Lookup, RecommendationCache
from models.filters import Filters
from models.request_ids import HEADER, request_id
from models.worker_metrics import WorkerMetrics
from producers.events import ID_PATTERN, MAX_ID_CHARS

log = logging.getLogger(__name__)

PREFIX = "/recommendations/"
DEFAULT_K = 10
MAX_K = 100
MAX_FILTER_VALUES = 100
_ID = re.compile(ID_PATTERN)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_LISTS = ("exclude_items", "include_genres", "exclude_genres")
ROUTE = "/recommendations/{user_id}"  # the latency metric's label of these answers
_CONTENT_TYPE = (b"content-type", b"application/json")
_HEADER = HEADER.encode()
# answer_body's shape for a cached list (tests/unit/test_hit_path.py compares the two)
_CACHED_BODY = (
    b'{"user_id":%s,"k":%d,"recommendations":%s,"cached":true,"degraded":false,'
    b'"degraded_reasons":[]}'
)


class Asked(NamedTuple):
    """The parameters of one recommendations request, as the route would read them."""

    user_id: str
    k: int
    filters: Filters


def variant(k: int, filters: Filters, model_version: str) -> str:
    """The cache variant of a request: ``k``, the filters' digest and the model version (answers
    of another model or other filters are other entries)."""
    name = str(k) if filters.is_default else f"{k}-{filters.fingerprint()}"
    return f"{name}-{model_version}" if model_version else name


def parse(path: str, query_string: bytes) -> Asked | None:
    """The request's parameters, or None when the route should see it (see the module)."""
    if not path.startswith(PREFIX):
        return None
    user_id = path[len(PREFIX) :]
    if not 0 < len(user_id) <= MAX_ID_CHARS or not _ID.fullmatch(user_id):
        return None  # also another path below /recommendations/
    k, exclude_seen = DEFAULT_K, True
    lists: dict[str, list[str]] = {name: [] for name in _LISTS}
    scalars: set[str] = set()
    try:
        pairs = parse_qsl(
            query_string.decode("latin-1"), keep_blank_values=True, strict_parsing=True
        )
    except ValueError:
        return None
    for name, value in pairs:
        if name in lists:
            lists[name].append(value)
            continue
        if name in scalars:
            return None
        scalars.add(name)
        if name == "k":
            if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_K:
                return None
            k = int(value)
        elif name == "exclude_seen" and value in _BOOLEANS:
            exclude_seen = _BOOLEANS[value]
        else:
            return None
    if any(len(values) > MAX_FILTER_VALUES for values in lists.values()):
        return None
    items = lists["exclude_items"]
    if any(not 0 < len(i) <= MAX_ID_CHARS or not _ID.fullmatch(i) for i in items):
        return None
    filters = Filters(
        exclude_seen,
        frozenset(items),
        frozenset(lists["include_genres"]),
        frozenset(lists["exclude_genres"]),
    )
    return Asked(user_id, k, filters)


def answer_body(
    user_id: str, k: int, recs: list[dict[str, Any]], cached: bool, reasons: list[str]
) -> bytes:
    """A ``RecommendationsResponse`` as JSON bytes."""
    body = {
        "user_id": user_id,
        "k": k,
        "recommendations": recs,
        "cached": cached,
        "degraded": bool(reasons),
        "degraded_reasons": reasons,
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def looked_up(cache: RecommendationCache, user_id: str, name: str) -> Lookup | None:
    """``cache.get``, or None when the cache failed (logged, unless it failed moments ago and
    was not tried)."""
    try:
        return await cache.get(user_id, name)
    except CacheUnavailable:
        return None
    except CacheError:
        log.warning("recommendation cache read failed; computing without it", exc_info=True)
        return None


# the route's computation of a missed answer: (request, cache variant, the miss or None when the
# cache failed) -> JSON body
Compute = Callable[[Asked, str, Lookup | None], Awaitable[bytes]]


class CachedAnswers:
    """ASGI middleware: cached recommendation answers written without the app (see module).

    ``model_version`` is asked on every request: the reloader may swap the model while serving.
    """

    def __init__(
        self,
        app: ASGIApp,
        cache: RecommendationCache,
        model_version: Callable[[], str],
        metrics: WorkerMetrics,
        compute: Compute,
    ) -> None:
        self._app = app
        self._compute = compute
        self._cache = cache
        self._model_version = model_version
        # a cache that holds lists in process memory answers them without an await
        self._held: Callable[[str, str], str | None] | None = getattr(cache, "held", None)
        self._hits = metrics.cache.labels("hit")
        self._misses = metrics.cache.labels("miss")
        self._errors = metrics.cache.labels("error")
        self._timed = metrics.requests.labels(ROUTE, "200")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a cached request; pass everything else on."""
        if scope["type"] != "http" or scope["method"] != "GET":
            await self._app(scope, receive, send)
            return
        asked = parse(scope["path"], scope["query_string"])
        if asked is None:
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        name = variant(asked.k, asked.filters, self._model_version())
        held = self._held(asked.user_id, name) if self._held is not None else None
        if held is not None:  # in this process's memory: no I/O, the JSON as stored
            self._hits.inc()
            body = _CACHED_BODY % (json.dumps(asked.user_id).encode(), asked.k, held.encode())
            await self._respond(scope, send, body, started)
            return
        lookup = await looked_up(self._cache, asked.user_id, name)
        if lookup is None or lookup.recs is None:  # computed (uncached and flagged when None)
            (self._errors if lookup is None else self._misses).inc()
            rid = request_id(scope["headers"])
            with correlated(rid):  # what computing logs names the request
                body = await self._compute(asked, name, lookup)
            await self._respond(scope, send, body, started, rid)
            return
        self._hits.inc()
        body = answer_body(asked.user_id, asked.k, lookup.recs, cached=True, reasons=[])
        await self._respond(scope, send, body, started)

    async def _respond(
        self, scope: Scope, send: Send, body: bytes, started: float, rid: str | None = None
    ) -> None:
        rid = rid or request_id(scope["headers"])
        headers = [_CONTENT_TYPE, (b"content-length", b"%d" % len(body)), (_HEADER, rid.encode())]
        with correlated(rid):  # uvicorn's access line is logged inside send
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        self._timed.observe(time.perf_counter() - started)
