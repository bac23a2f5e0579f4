"""One contract for every RecommendationCache: process memory, a real Redis, and Redis with a
near copy in process memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from feature_store.invalidation import RedisInvalidator, generation_key
from infra.local_redis import delete_prefix, unique_prefix
from models.cache import InMemoryCache, RecommendationCache, RedisCache, make_cache
from models.near_cache import NearCache

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
        while (await self.cache.get(user_id, k)).recs is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


async def live(cache: NearCache) -> NearCache:
    """``cache`` once its listener is subscribed (it starts on the first lookup)."""
    deadline = time.monotonic() + EXPIRY_DEADLINE_SECONDS
    while not cache.live:
        assert time.monotonic() < deadline, "the near cache's listener did not subscribe"
        await cache.get("nobody", "warm-up")
        await asyncio.sleep(0.01)
    return cache


@pytest.fixture(params=["memory", "redis", "near"])
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
    if request.param == "near":
        redis_cache: RedisCache = await live(NearCache(url, prefix=prefix))
    else:
        redis_cache = RedisCache(url, prefix=prefix)
    yield Harness(redis_cache)
    await redis_cache.close()
    delete_prefix(url, prefix)


async def got(cache: RecommendationCache, user_id: str, k: int) -> list[dict] | None:
    """The fresh list ``cache`` holds for ``(user_id, k)``, or None."""
    return (await cache.get(user_id, k)).recs


async def put(cache: RecommendationCache, user_id: str, k: int, recs: list, ttl: float) -> None:
    """Store ``recs`` as a list computed now (at the user's current generation)."""
    generation = (await cache.get(user_id, k)).generation
    await cache.set(user_id, k, recs, ttl, generation)


def test_both_implementations_satisfy_the_protocol() -> None:
    assert isinstance(InMemoryCache(), RecommendationCache)
    assert isinstance(RedisCache("redis://127.0.0.1:1/0"), RecommendationCache)


async def test_get_of_a_missing_entry_is_none(harness: Harness) -> None:
    assert await got(harness.cache, "nobody", 10) is None


async def test_set_then_get_round_trips(harness: Harness) -> None:
    await put(harness.cache, "u1", 10, RECS, 60)
    assert await got(harness.cache, "u1", 10) == RECS
    assert await got(harness.cache, "u1", 5) is None
    assert await got(harness.cache, "u2", 10) is None


async def test_get_returns_a_copy(harness: Harness) -> None:
    stored = [dict(r) for r in RECS]
    await put(harness.cache, "u1", 10, stored, 60)
    stored[0]["score"] = -1.0
    first = await got(harness.cache, "u1", 10)
    assert first == RECS
    first[0]["item_id"] = "changed"
    assert await got(harness.cache, "u1", 10) == RECS


async def test_set_replaces_the_older_entry(harness: Harness) -> None:
    await put(harness.cache, "u1", 10, RECS, 60)
    await put(harness.cache, "u1", 10, RECS[:1], 60)
    assert await got(harness.cache, "u1", 10) == RECS[:1]


async def test_an_empty_list_is_a_hit_not_a_miss(harness: Harness) -> None:
    await put(harness.cache, "u1", 3, [], 60)
    assert await got(harness.cache, "u1", 3) == []


async def test_entries_expire_after_their_ttl(harness: Harness) -> None:
    await put(harness.cache, "u1", 10, RECS, 1)
    await put(harness.cache, "u1", 20, RECS, 600)
    assert await got(harness.cache, "u1", 10) == RECS
    await harness.wait_expired("u1", 10, ttl_seconds=1)
    assert await got(harness.cache, "u1", 10) is None
    assert await got(harness.cache, "u1", 20) == RECS


async def test_invalidate_removes_every_k_of_that_user_only(harness: Harness) -> None:
    for k in (1, 10, 100):
        await put(harness.cache, "u1", k, RECS, 60)
    await put(harness.cache, "u2", 10, RECS, 60)
    await put(harness.cache, "u1x", 10, RECS, 60)  # a user id u1 is a prefix of
    await harness.cache.invalidate(["u1"])
    for k in (1, 10, 100):
        assert await got(harness.cache, "u1", k) is None
    assert await got(harness.cache, "u2", 10) == RECS
    assert await got(harness.cache, "u1x", 10) == RECS


async def test_set_after_invalidate_is_cached_again(harness: Harness) -> None:
    await put(harness.cache, "u1", 10, RECS, 60)
    await harness.cache.invalidate(["u1"])
    await put(harness.cache, "u1", 10, RECS[:1], 60)
    assert await got(harness.cache, "u1", 10) == RECS[:1]


async def test_invalidate_of_an_unknown_user_is_a_no_op(harness: Harness) -> None:
    await put(harness.cache, "u1", 10, RECS, 60)
    await harness.cache.invalidate(["nobody"])
    assert await got(harness.cache, "u1", 10) == RECS


async def test_in_memory_ttl_boundary() -> None:
    clock = FakeClock()
    cache = InMemoryCache(clock=clock)
    await put(cache, "u1", 10, RECS, 60)
    clock.advance(59.999)
    assert await got(cache, "u1", 10) == RECS
    clock.advance(0.001)
    assert await got(cache, "u1", 10) is None
    assert len(cache) == 0


async def test_in_memory_evicts_the_least_recently_used_entry() -> None:
    cache = InMemoryCache(max_entries=2, clock=FakeClock())
    await put(cache, "a", 1, RECS, 60)
    await put(cache, "b", 1, RECS, 60)
    assert await got(cache, "a", 1) == RECS  # a is now more recent than b
    await put(cache, "c", 1, RECS, 60)
    assert len(cache) == 2
    assert await got(cache, "b", 1) is None
    assert await got(cache, "a", 1) == RECS
    assert await got(cache, "c", 1) == RECS
    await cache.invalidate(["b"])  # evicted entries leave nothing behind to invalidate
    assert len(cache) == 2


async def test_a_list_computed_before_an_invalidation_is_never_returned(harness: Harness) -> None:
    # the race the generations exist for: read the features, the processor writes newer ones and
    # invalidates, then the older list is stored
    generation = (await harness.cache.get("u1", 10)).generation
    await harness.cache.invalidate(["u1"])
    await harness.cache.set("u1", 10, RECS, 60, generation)
    assert await got(harness.cache, "u1", 10) is None
    await put(harness.cache, "u1", 10, RECS[:1], 60)  # computed after it: cached
    assert await got(harness.cache, "u1", 10) == RECS[:1]


async def test_an_invalidation_after_the_set_makes_the_entry_stale(harness: Harness) -> None:
    lookup = await harness.cache.get("u1", 10)
    await harness.cache.set("u1", 10, RECS, 60, lookup.generation)
    await harness.cache.invalidate(["u1", "u2"])
    after = await harness.cache.get("u1", 10)
    assert after.recs is None
    assert after.generation != lookup.generation


async def test_in_memory_forgetting_generations_never_revives_an_older_list() -> None:
    cache = InMemoryCache(max_entries=2, clock=FakeClock())
    old = (await cache.get("u1", 10)).generation
    await cache.invalidate(["a", "b", "c"])  # more users than max_entries: generations forgotten
    await cache.set("u1", 10, RECS, 60, old)
    assert await got(cache, "u1", 10) is None
    await put(cache, "u1", 10, RECS, 60)
    assert await got(cache, "u1", 10) == RECS


async def test_the_processors_invalidator_makes_redis_entries_stale(redis_url: str) -> None:
    prefix = unique_prefix("recs")
    cache, invalidator = RedisCache(redis_url, prefix=prefix), RedisInvalidator(redis_url, prefix)
    try:
        await put(cache, "u1", 10, RECS, 60)
        await put(cache, "u2", 10, RECS, 60)
        await invalidator(["u1"])
        assert await got(cache, "u1", 10) is None
        assert await got(cache, "u2", 10) == RECS
        assert invalidator.bumped == 1
        assert await cache._redis.ttl(generation_key(prefix, "u1")) > 0
    finally:
        await cache.close()
        await invalidator.close()
        delete_prefix(redis_url, prefix)


async def test_redis_refuses_entries_that_would_outlive_the_generations(redis_url: str) -> None:
    cache = RedisCache(redis_url, prefix=unique_prefix("recs"))
    try:
        with pytest.raises(ValueError, match="ttl_seconds must be below"):
            await cache.set("u1", 10, RECS, 8 * 24 * 3600, 0)
    finally:
        await cache.close()


async def test_make_cache_picks_redis_only_with_a_url(redis_url: str) -> None:
    memory = make_cache(None)
    near = make_cache(redis_url)
    plain = make_cache(redis_url, near_entries=0)
    try:
        assert isinstance(memory, InMemoryCache)
        assert isinstance(near, NearCache)
        assert isinstance(plain, RedisCache)
        assert not isinstance(plain, NearCache)
        assert near.entry_key("u", 10) == "streamrec:recs:e:10:u"
    finally:
        for cache in (memory, near, plain):
            await cache.close()
