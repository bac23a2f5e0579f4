"""One contract for every RecommendationCache: process memory and a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from models.cache import InMemoryCache, RecommendationCache, RedisCache, make_cache
from tests.redis_server import delete_prefix, unique_prefix

EXPIRY_DEADLINE_SECONDS = 5.0
RECS = [
    {"item_id": "i1", "score": 2.5, "reason": "seen with i0"},
    {"item_id": "i2", "score": 1.0, "reason": "popular"},
]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """A cache under test and how to let time pass for it."""

    cache: RecommendationCache
    clock: FakeClock | None = None

    async def wait_expired(self, user_id: str, k: int, ttl_seconds: float) -> None:
        """Move past ``ttl_seconds``: advance the fake clock, or poll Redis until a deadline."""
        if self.clock is not None:
            self.clock.advance(ttl_seconds)
            return
        deadline = time.monotonic() + ttl_seconds + EXPIRY_DEADLINE_SECONDS
        while await self.cache.get(user_id, k) is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """Each cache implementation, empty, in a key space of its own."""
    if request.param == "memory":
        clock = FakeClock()
        cache = InMemoryCache(max_entries=100, clock=clock)
        yield Harness(cache, clock)
        await cache.close()
        return
    url = request.getfixturevalue("redis_url")
    prefix = unique_prefix("recs")
    redis_cache = RedisCache(url, prefix=prefix)
    yield Harness(redis_cache)
    await redis_cache.close()
    delete_prefix(url, prefix)


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(InMemoryCache(), RecommendationCache)
    assert isinstance(RedisCache("redis://127.0.0.1:1/0"), RecommendationCache)


async def test_get_of_a_missing_entry_is_none(harness: Harness) -> None:
    assert await harness.cache.get("nobody", 10) is None


async def test_set_then_get_round_trips(harness: Harness) -> None:
    await harness.cache.set("u1", 10, RECS, ttl_seconds=60)
    assert await harness.cache.get("u1", 10) == RECS
    assert await harness.cache.get("u1", 5) is None
    assert await harness.cache.get("u2", 10) is None


async def test_get_returns_a_copy(harness: Harness) -> None:
    stored = [dict(r) for r in RECS]
    await harness.cache.set("u1", 10, stored, ttl_seconds=60)
    stored[0]["score"] = -1.0
    got = await harness.cache.get("u1", 10)
    assert got == RECS
    got[0]["item_id"] = "changed"
    assert await harness.cache.get("u1", 10) == RECS


async def test_set_replaces_the_older_entry(harness: Harness) -> None:
    await harness.cache.set("u1", 10, RECS, ttl_seconds=60)
    await harness.cache.set("u1", 10, RECS[:1], ttl_seconds=60)
    assert await harness.cache.get("u1", 10) == RECS[:1]


async def test_an_empty_list_is_a_hit_not_a_miss(harness: Harness) -> None:
    await harness.cache.set("u1", 3, [], ttl_seconds=60)
    assert await harness.cache.get("u1", 3) == []


async def test_entries_expire_after_their_ttl(harness: Harness) -> None:
    await harness.cache.set("u1", 10, RECS, ttl_seconds=1)
    await harness.cache.set("u1", 20, RECS, ttl_seconds=600)
    assert await harness.cache.get("u1", 10) == RECS
    await harness.wait_expired("u1", 10, ttl_seconds=1)
    assert await harness.cache.get("u1", 10) is None
    assert await harness.cache.get("u1", 20) == RECS


async def test_invalidate_removes_every_k_of_that_user_only(harness: Harness) -> None:
    for k in (1, 10, 100):
        await harness.cache.set("u1", k, RECS, ttl_seconds=60)
    await harness.cache.set("u2", 10, RECS, ttl_seconds=60)
    await harness.cache.set("u1x", 10, RECS, ttl_seconds=60)  # a user id u1 is a prefix of
    await harness.cache.invalidate("u1")
    for k in (1, 10, 100):
        assert await harness.cache.get("u1", k) is None
    assert await harness.cache.get("u2", 10) == RECS
    assert await harness.cache.get("u1x", 10) == RECS


async def test_set_after_invalidate_is_cached_again(harness: Harness) -> None:
    await harness.cache.set("u1", 10, RECS, ttl_seconds=60)
    await harness.cache.invalidate("u1")
    await harness.cache.set("u1", 10, RECS[:1], ttl_seconds=60)
    assert await harness.cache.get("u1", 10) == RECS[:1]


async def test_invalidate_of_an_unknown_user_is_a_no_op(harness: Harness) -> None:
    await harness.cache.set("u1", 10, RECS, ttl_seconds=60)
    await harness.cache.invalidate("nobody")
    assert await harness.cache.get("u1", 10) == RECS


async def test_in_memory_ttl_boundary() -> None:
    clock = FakeClock()
    cache = InMemoryCache(clock=clock)
    await cache.set("u1", 10, RECS, ttl_seconds=60)
    clock.advance(59.999)
    assert await cache.get("u1", 10) == RECS
    clock.advance(0.001)
    assert await cache.get("u1", 10) is None
    assert len(cache) == 0


async def test_in_memory_evicts_the_least_recently_used_entry() -> None:
    cache = InMemoryCache(max_entries=2, clock=FakeClock())
    await cache.set("a", 1, RECS, ttl_seconds=60)
    await cache.set("b", 1, RECS, ttl_seconds=60)
    assert await cache.get("a", 1) == RECS  # a is now more recent than b
    await cache.set("c", 1, RECS, ttl_seconds=60)
    assert len(cache) == 2
    assert await cache.get("b", 1) is None
    assert await cache.get("a", 1) == RECS
    assert await cache.get("c", 1) == RECS
    await cache.invalidate("b")  # evicted entries leave nothing behind to invalidate
    assert len(cache) == 2


async def test_redis_user_index_outlives_its_longest_entry(redis_url: str) -> None:
    prefix = unique_prefix("recs")
    cache = RedisCache(redis_url, prefix=prefix)
    try:
        await cache.set("u1", 1, RECS, ttl_seconds=600)
        await cache.set("u1", 2, RECS, ttl_seconds=5)
        index_ttl = await cache._redis.pttl(cache.index_key("u1"))
        assert 590_000 < index_ttl <= 600_000
        assert cache.entry_key("u1", 2) == f"{prefix}:u1:2"
    finally:
        await cache.close()
        delete_prefix(redis_url, prefix)


async def test_make_cache_picks_redis_only_with_a_url(redis_url: str) -> None:
    memory = make_cache(None)
    redis_cache = make_cache(redis_url)
    try:
        assert isinstance(memory, InMemoryCache)
        assert isinstance(redis_cache, RedisCache)
        assert redis_cache.entry_key("u", 10) == "streamrec:recs:u:10"
    finally:
        await memory.close()
        await redis_cache.close()
