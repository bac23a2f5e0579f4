"""The near cache: entries served from process memory, dropped when Redis announces a change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import redis

from feature_store.invalidation import RedisInvalidator
from feature_store.memory import InMemoryOnlineStore
from infra.local_redis import delete_prefix, redis_server, unique_prefix
from models.cache import CacheError
from models.near_cache import NearCache
from models.recommender import Recommender
from models.worker import create_app
from tests.contract.test_cache_contract import RECS, got, live, put

DEADLINE_SECONDS = 5.0


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE_SECONDS} s: {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test, deleted afterwards."""
    name = unique_prefix("recs")
    yield name
    delete_prefix(redis_url, name)


@pytest.fixture
async def cache(redis_url: str, prefix: str) -> AsyncIterator[NearCache]:
    """A near cache whose listener is subscribed."""
    near = await live(NearCache(redis_url, prefix=prefix, max_entries=3))
    yield near
    await near.close()


async def test_a_repeated_lookup_is_answered_from_memory(
    cache: NearCache, redis_url: str, prefix: str
) -> None:
    await put(cache, "u1", 10, RECS, 60)
    hits = cache.near_hits
    assert await got(cache, "u1", 10) == RECS
    assert cache.near_hits == hits + 1
    # the copy is what answers: deleting the Redis entry behind the cache's back (no
    # announcement) leaves it; an announced change would not
    redis.Redis.from_url(redis_url).delete(cache.entry_key("u1", 10))
    assert await got(cache, "u1", 10) == RECS


async def test_an_entry_read_from_redis_is_kept_near(redis_url: str, prefix: str) -> None:
    writer = NearCache(redis_url, prefix=prefix)
    reader = await live(NearCache(redis_url, prefix=prefix))
    try:
        await put(writer, "u1", 10, RECS, 60)
        assert await got(reader, "u1", 10) == RECS  # from Redis
        hits = reader.near_hits
        assert await got(reader, "u1", 10) == RECS
        assert reader.near_hits == hits + 1
    finally:
        await writer.close()
        await reader.close()


async def test_the_processors_announcement_drops_the_near_entry(
    cache: NearCache, redis_url: str, prefix: str
) -> None:
    invalidator = RedisInvalidator(redis_url, prefix)
    try:
        await put(cache, "u1", 10, RECS, 60)
        await put(cache, "u2", 10, RECS, 60)
        await invalidator(["u1"])
        await eventually(lambda: ("u1", 10) not in cache._near, "u1's near entry dropped")
        assert await got(cache, "u1", 10) is None
        assert await got(cache, "u2", 10) == RECS
    finally:
        await invalidator.close()


async def test_a_list_computed_across_an_announcement_is_not_kept(
    cache: NearCache, redis_url: str, prefix: str
) -> None:
    invalidator = RedisInvalidator(redis_url, prefix)
    try:
        before = await cache.get("u1", 10)  # the lookup of a miss; then the features change
        await invalidator(["u1"])
        await eventually(lambda: "u1" not in cache._known, "the announcement heard")
        await cache.set("u1", 10, RECS, 60, before.generation)  # the older computation lands
        assert len(cache) == 0
        assert await got(cache, "u1", 10) is None
    finally:
        await invalidator.close()


async def test_entries_are_bounded_least_recently_used_first(cache: NearCache) -> None:
    for user in ("a", "b", "c"):
        await put(cache, user, 10, RECS, 60)
    assert await got(cache, "a", 10) == RECS  # a is now more recent than b
    await put(cache, "d", 10, RECS, 60)
    assert len(cache) == 3
    assert ("b", 10) not in cache._near
    assert await got(cache, "b", 10) == RECS  # still in Redis


async def test_a_lost_subscription_forgets_everything_until_subscribed_again(
    cache: NearCache, redis_url: str
) -> None:
    await put(cache, "u1", 10, RECS, 60)
    assert len(cache) == 1
    admin = redis.Redis.from_url(redis_url)
    name = cache.subscriber_name
    (client,) = [c for c in admin.client_list() if c["name"] == name]
    admin.client_kill_filter(_id=client["id"])
    await eventually(lambda: len(cache) == 0, "near entries forgotten")
    await eventually(lambda: cache.live, "subscribed again")
    assert await got(cache, "u1", 10) == RECS  # from Redis, then near again
    assert len(cache) == 1


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        NearCache("redis://127.0.0.1:1/0", max_entries=0)


async def test_a_cache_that_cannot_reach_redis_raises_cache_error() -> None:
    near = NearCache("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(CacheError):
            await near.get("u1", 10)
        assert not near.live
    finally:
        await near.close()


async def test_the_worker_answers_repeated_hits_from_memory(cache: NearCache) -> None:
    store = InMemoryOnlineStore()
    app = create_app(Recommender(store), cache, ttl_seconds=60)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        computed = (await http.get("/recommendations/u1", params={"k": 3})).json()
        hits = cache.near_hits
        cached = await http.get("/recommendations/u1", params={"k": 3})
    assert cache.near_hits == hits + 1
    assert cached.headers["x-request-id"]
    assert cached.json() == {**computed, "cached": True}


@pytest.mark.parametrize("lookups", [1, 2, 3])
async def test_closing_right_after_the_first_lookups_stops_the_listener(lookups: int) -> None:
    # closed while its listener subscribes: a cancel landing as redis-py's send ends was lost
    # (Python 3.11's wait_for) and close waited for the listener forever (a fresh server's
    # first connections, as here, hit that every time)
    with redis_server() as server:
        for _ in range(3):
            cache = NearCache(server.url, prefix=unique_prefix("recs"))
            for _ in range(lookups):
                await cache.get("u1", 10)
            listener = cache._listener
            assert listener is not None
            closing = asyncio.ensure_future(cache.close())
            await asyncio.wait([closing], timeout=DEADLINE_SECONDS)  # not asyncio.timeout:
            assert closing.done(), "close did not stop the listener"  # close swallowed it
            assert listener.done()
