"""The recommendation cache: a small port and its two shipped adapters, process memory and Redis.

Entries are keyed by ``(user_id, variant)`` (a request's shape: ``k``, and a digest of its
filters; no ``:`` in it) and hold JSON-compatible recommendation dicts. Both
adapters return copies (what ``get`` returns is never the object ``set`` stored).

Invalidation is by generation (``feature_store.invalidation``): ``get`` also answers the user's
current generation, ``set`` is given the generation its list was computed at, and an entry whose
generation is not the user's current one is never returned. ``invalidate`` moves a user's
generation on, so every variant of that user (and nothing else) goes stale at once,
including a list being computed from older features while the invalidation happens.

    StreamrecError
    └── CacheError            the cache backend failed (callers may serve uncached)
        └── CacheUnavailable  not tried: the backend failed moments ago

A Redis that stops answering (paused, partitioned) must not hold requests: every Redis call
gives up after ``timeout_seconds``, and after a failure the cache answers ``CacheUnavailable`` at
once for ``retry_after_seconds`` instead of making each request wait out its own timeout.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol, runtime_checkable

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from feature_store.invalidation import GENERATION_TTL_SECONDS, bump_generations, generation_key
from infra.errors import StreamrecError

KEY_PREFIX = "streamrec:recs"
DEFAULT_MAX_ENTRIES = 10_000
# a Redis call slower than this has failed: a loopback or same-zone Redis answers in well under a
# millisecond, this is for one that stopped answering (paused, partitioned), with room for a
# loaded machine's pauses
DEFAULT_TIMEOUT_SECONDS = 0.5
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class CacheError(StreamrecError):
    """The cache backend failed; the cache holds nothing wrong, it is only unavailable."""


class CacheUnavailable(CacheError):
    """Not tried: the backend failed less than ``retry_after_seconds`` ago (already reported)."""


class Lookup(NamedTuple):
    """What ``get`` found: the list (None when absent, expired or stale) and the user's
    generation now, to hand to ``set`` with a list computed after this lookup."""

    recs: list[dict[str, Any]] | None
    generation: int


@runtime_checkable
class RecommendationCache(Protocol):
    """Cached recommendation lists per ``(user_id, variant)``, each living ``ttl_seconds``."""

    async def get(self, user_id: str, variant: str | int) -> Lookup:
        """The list stored for ``(user_id, variant)`` if still fresh, and the user's generation."""
        ...

    async def set(
        self,
        user_id: str,
        variant: str | int,
        recs: Sequence[dict[str, Any]],
        ttl_seconds: float,
        generation: int,
    ) -> None:
        """Store ``recs``, computed at ``generation``, for ``ttl_seconds``; a list of an older
        generation than the user's current one is never returned."""
        ...

    async def invalidate(self, user_ids: Collection[str]) -> None:
        """Make every entry of these users stale (all ``variant``); other users' entries stay."""
        ...

    async def close(self) -> None:
        """Release connections; the cache is not used afterwards."""
        ...


class InMemoryCache:
    """A bounded, process-local cache: TTL on an injectable clock, least recently used evicted.

    Generations come from one counter: a user's generation is the counter's value at their last
    invalidation. When more users than ``max_entries`` have one, all are forgotten and every
    user's generation becomes the counter's current value (so no older list is taken again).
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str | int], tuple[float, str]] = OrderedDict()
        self._by_user: dict[str, set[str | int]] = {}
        self._generations: dict[str, int] = {}
        self._counter = 0
        self._floor = 0  # the generation of users not in _generations

    def __len__(self) -> int:
        """Entries held, expired ones included until they are touched or evicted."""
        return len(self._entries)

    def _generation(self, user_id: str) -> int:
        return self._generations.get(user_id, self._floor)

    async def get(self, user_id: str, variant: str | int) -> Lookup:
        """See ``RecommendationCache.get``."""
        generation = self._generation(user_id)
        key = (user_id, variant)
        entry = self._entries.get(key)
        if entry is None:
            return Lookup(None, generation)
        expires_at, payload = entry
        if self._clock() >= expires_at:
            self._drop(key)
            return Lookup(None, generation)
        self._entries.move_to_end(key)
        return Lookup(json.loads(payload), generation)

    async def set(
        self,
        user_id: str,
        variant: str | int,
        recs: Sequence[dict[str, Any]],
        ttl_seconds: float,
        generation: int,
    ) -> None:
        """See ``RecommendationCache.set``; a stale list is not stored at all."""
        if generation != self._generation(user_id):
            return  # computed before an invalidation: stale already
        key = (user_id, variant)
        # Stored as JSON, like Redis: same copy semantics, same values accepted.
        self._entries[key] = (self._clock() + ttl_seconds, json.dumps(list(recs)))
        self._entries.move_to_end(key)
        self._by_user.setdefault(user_id, set()).add(variant)
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))

    async def invalidate(self, user_ids: Collection[str]) -> None:
        """See ``RecommendationCache.invalidate``."""
        for user_id in user_ids:
            self._counter += 1
            self._generations[user_id] = self._counter
            for variant in list(self._by_user.get(user_id, ())):
                self._drop((user_id, variant))
        if len(self._generations) > self._max_entries:
            self._generations.clear()
            self._floor = self._counter

    async def close(self) -> None:
        """Forget everything."""
        self._entries.clear()
        self._by_user.clear()

    def _drop(self, key: tuple[str, str | int]) -> None:
        self._entries.pop(key, None)
        user_id, variant = key
        ks = self._by_user.get(user_id)
        if ks is not None:
            ks.discard(variant)
            if not ks:
                del self._by_user[user_id]


class RedisCache:
    """Recommendations in Redis, one JSON string per ``(user_id, variant)``.

    An entry lives at ``<prefix>:e:<variant>:<user_id>`` as ``{"g": generation, "x": expiry
    (epoch ms), "recs": [...]}``;
    the user's generation at ``<prefix>:g:<user_id>`` (bumped by the feature processors through
    ``feature_store.invalidation.RedisInvalidator``, or by ``invalidate``). ``get`` reads both in
    one MGET and ignores an entry of another generation.

    Each call gives up after ``timeout_seconds`` without an answer (connecting, sending and
    reading each get that long); a pooled connection found closed is dialled again once, at
    once, and a call that timed out is not tried again (redis-py's default retries ten times
    with backoff, seconds inside a request). After a failure, calls raise ``CacheUnavailable``
    without trying for ``retry_after_seconds`` (0: always try), on ``clock``.
    """

    def __init__(
        self,
        url: str,
        prefix: str = KEY_PREFIX,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must not be negative")
        self._redis = aioredis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            # a connection Redis closed is dialled again at once; a timeout is not waited twice
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._prefix = prefix
        self._retry_after = retry_after_seconds
        self._breaker_clock = clock
        self._failed_at = -math.inf

    @contextmanager
    def _guarded(self, what: str) -> Iterator[None]:
        """Redis errors inside as ``CacheError``; nothing tried shortly after one."""
        now = self._breaker_clock()
        if now - self._failed_at < self._retry_after:
            raise CacheUnavailable(
                f"{what} not tried: Redis failed {now - self._failed_at:.2f} s ago "
                f"(tried again {self._retry_after:g} s after a failure)"
            )
        try:
            yield
        except RedisError as exc:
            self._failed_at = self._breaker_clock()
            raise CacheError(f"{what} failed: {exc}") from exc

    def entry_key(self, user_id: str, variant: str | int) -> str:
        """The Redis key of the entry ``(user_id, variant)``."""
        return f"{self._prefix}:e:{variant}:{user_id}"

    async def get(self, user_id: str, variant: str | int) -> Lookup:
        """See ``RecommendationCache.get``."""
        entry, generation = await self.read_entry(user_id, variant)
        return Lookup(None if entry is None else entry["recs"], generation)

    async def read_entry(self, user_id: str, variant: str | int) -> tuple[dict | None, int]:
        """The stored entry (``g``, ``x``, ``recs``) when of the user's current generation, and
        that generation: one MGET."""
        with self._guarded("GET"):
            payload, raw = await self._redis.mget(
                self.entry_key(user_id, variant), generation_key(self._prefix, user_id)
            )
        generation = int(raw or 0)
        if payload is None:
            return None, generation
        entry = json.loads(payload)
        return (entry if entry["g"] == generation else None), generation

    async def set(
        self,
        user_id: str,
        variant: str | int,
        recs: Sequence[dict[str, Any]],
        ttl_seconds: float,
        generation: int,
    ) -> None:
        """See ``RecommendationCache.set``."""
        if ttl_seconds >= GENERATION_TTL_SECONDS:
            raise ValueError(
                f"ttl_seconds must be below {GENERATION_TTL_SECONDS} (the generations' lifetime)"
            )
        ttl_ms = max(1, round(ttl_seconds * 1000))
        expires = int(time.time() * 1000) + ttl_ms
        payload = json.dumps({"g": generation, "x": expires, "recs": list(recs)})
        with self._guarded("SET"):
            await self._redis.set(self.entry_key(user_id, variant), payload, px=ttl_ms)

    async def invalidate(self, user_ids: Collection[str]) -> None:
        """See ``RecommendationCache.invalidate``."""
        with self._guarded("invalidate"):
            await bump_generations(self._redis, self._prefix, user_ids)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def make_cache(
    redis_url: str | None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    prefix: str = KEY_PREFIX,
    near_entries: int = DEFAULT_MAX_ENTRIES,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
) -> RecommendationCache:
    """Redis (keys under ``prefix``; each call at most ``timeout_seconds``, none for
    ``retry_after_seconds`` after a failure) when ``redis_url`` is set, with up to
    ``near_entries`` of its entries kept in process memory (``models.near_cache``; 0: none);
    otherwise process memory alone (``max_entries``)."""
    if not redis_url:
        return InMemoryCache(max_entries=max_entries)
    if near_entries <= 0:
        return RedisCache(redis_url, prefix, timeout_seconds, retry_after_seconds)
    from models.near_cache import NearCache  # it builds on RedisCache, defined above

    return NearCache(
        redis_url,
        prefix=prefix,
        max_entries=near_entries,
        timeout_seconds=timeout_seconds,
        retry_after_seconds=retry_after_seconds,
    )
