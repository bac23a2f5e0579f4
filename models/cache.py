"""The recommendation cache: a small port and its two shipped adapters, process memory and Redis.

Entries are keyed by ``(user_id, k)`` and hold JSON-compatible recommendation dicts. Both
adapters return copies (what ``get`` returns is never the object ``set`` stored), and
``invalidate`` drops every ``k`` variant of one user and nothing else.

    StreamrecError
    └── CacheError    the cache backend failed (callers may serve uncached)
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from infra.errors import StreamrecError

KEY_PREFIX = "streamrec:recs"
DEFAULT_MAX_ENTRIES = 10_000


class CacheError(StreamrecError):
    """The cache backend failed; the cache holds nothing wrong, it is only unavailable."""


@runtime_checkable
class RecommendationCache(Protocol):
    """Cached recommendation lists per ``(user_id, k)``, each living ``ttl_seconds``."""

    async def get(self, user_id: str, k: int) -> list[dict[str, Any]] | None:
        """The list stored for ``(user_id, k)``; None when absent, expired or invalidated."""
        ...

    async def set(
        self, user_id: str, k: int, recs: Sequence[dict[str, Any]], ttl_seconds: float
    ) -> None:
        """Store ``recs`` for ``(user_id, k)`` for ``ttl_seconds``, replacing any older entry."""
        ...

    async def invalidate(self, user_id: str) -> None:
        """Drop every entry of ``user_id`` (all ``k``); other users' entries stay."""
        ...

    async def close(self) -> None:
        """Release connections; the cache is not used afterwards."""
        ...


class InMemoryCache:
    """A bounded, process-local cache: TTL on an injectable clock, least recently used evicted."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, int], tuple[float, str]] = OrderedDict()
        self._by_user: dict[str, set[int]] = {}

    def __len__(self) -> int:
        """Entries held, expired ones included until they are touched or evicted."""
        return len(self._entries)

    async def get(self, user_id: str, k: int) -> list[dict[str, Any]] | None:
        """See ``RecommendationCache.get``."""
        key = (user_id, k)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, payload = entry
        if self._clock() >= expires_at:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return json.loads(payload)

    async def set(
        self, user_id: str, k: int, recs: Sequence[dict[str, Any]], ttl_seconds: float
    ) -> None:
        """See ``RecommendationCache.set``."""
        key = (user_id, k)
        # Stored as JSON, like Redis: same copy semantics, same values accepted.
        self._entries[key] = (self._clock() + ttl_seconds, json.dumps(list(recs)))
        self._entries.move_to_end(key)
        self._by_user.setdefault(user_id, set()).add(k)
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))

    async def invalidate(self, user_id: str) -> None:
        """See ``RecommendationCache.invalidate``."""
        for k in list(self._by_user.get(user_id, ())):
            self._drop((user_id, k))

    async def close(self) -> None:
        """Forget everything."""
        self._entries.clear()
        self._by_user.clear()

    def _drop(self, key: tuple[str, int]) -> None:
        self._entries.pop(key, None)
        user_id, k = key
        ks = self._by_user.get(user_id)
        if ks is not None:
            ks.discard(k)
            if not ks:
                del self._by_user[user_id]


class RedisCache:
    """Recommendations in Redis (7.0 or newer), one JSON string per ``(user_id, k)``.

    Entries live at ``<prefix>:<user_id>:<k>``; the set ``<prefix>:<user_id>`` indexes a user's
    entries so ``invalidate`` deletes exactly them without scanning the keyspace. The index
    lives as long as the longest-lived entry it names (``EXPIRE ... GT``/``NX``).
    """

    def __init__(self, url: str, prefix: str = KEY_PREFIX) -> None:
        self._redis = aioredis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def entry_key(self, user_id: str, k: int) -> str:
        """The Redis key of the entry ``(user_id, k)``."""
        return f"{self._prefix}:{user_id}:{k}"

    def index_key(self, user_id: str) -> str:
        """The Redis key of the set of ``user_id``'s entry keys."""
        return f"{self._prefix}:{user_id}"

    async def get(self, user_id: str, k: int) -> list[dict[str, Any]] | None:
        """See ``RecommendationCache.get``."""
        try:
            payload = await self._redis.get(self.entry_key(user_id, k))
        except RedisError as exc:
            raise CacheError(f"GET failed: {exc}") from exc
        return None if payload is None else json.loads(payload)

    async def set(
        self, user_id: str, k: int, recs: Sequence[dict[str, Any]], ttl_seconds: float
    ) -> None:
        """See ``RecommendationCache.set``."""
        key, index = self.entry_key(user_id, k), self.index_key(user_id)
        ttl_ms = max(1, round(ttl_seconds * 1000))
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(key, json.dumps(list(recs)), px=ttl_ms)
                pipe.sadd(index, key)
                # A fresh index has no TTL: GT leaves it alone and NX sets it; an existing index
                # only ever gets longer, so it never expires before an entry it names.
                pipe.pexpire(index, ttl_ms, gt=True)
                pipe.pexpire(index, ttl_ms, nx=True)
                await pipe.execute()
        except RedisError as exc:
            raise CacheError(f"SET failed: {exc}") from exc

    async def invalidate(self, user_id: str) -> None:
        """See ``RecommendationCache.invalidate``."""
        index = self.index_key(user_id)
        # Not atomic: an entry set between the two calls survives until its TTL. That entry was
        # computed concurrently with the invalidation anyway, so atomicity would not make it fresh.
        try:
            keys = await self._redis.smembers(index)
            await self._redis.delete(index, *keys)
        except RedisError as exc:
            raise CacheError(f"invalidate failed: {exc}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def make_cache(
    redis_url: str | None, max_entries: int = DEFAULT_MAX_ENTRIES, prefix: str = KEY_PREFIX
) -> RecommendationCache:
    """Redis (keys under ``prefix``) when ``redis_url`` is set, otherwise process memory."""
    if redis_url:
        return RedisCache(redis_url, prefix=prefix)
    return InMemoryCache(max_entries=max_entries)
