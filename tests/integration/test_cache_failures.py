"""A Redis that stops answering: each call gives up after the cache's timeout, and for a while
after a failure the cache is not tried at all (a real redis-server, paused with SIGSTOP).
``NearCache`` shares this code (it is a ``RedisCache``) and keeps answering what it holds; the
worker's side is in test_worker.py."""

from __future__ import annotations

import time

import pytest

from infra.local_redis import redis_server, unique_prefix
from models.cache import CacheError, CacheUnavailable, RedisCache
from models.near_cache import NearCache
from tests.contract.test_cache_contract import FakeClock, live, put

TIMEOUT = 0.5
RETRY_AFTER = 30.0
RECS = [{"item_id": "i1", "score": 1.0, "reason": "popular"}]


async def test_a_paused_redis_costs_one_timeout_then_is_left_alone_for_a_while() -> None:
    clock = FakeClock()
    with redis_server() as server:
        cache = RedisCache(
            server.url,
            prefix=unique_prefix("recs"),
            timeout_seconds=TIMEOUT,
            retry_after_seconds=RETRY_AFTER,
            clock=clock,
        )
        try:
            await cache.set("u1", 10, RECS, 60, 0)
            server.pause()
            started = time.monotonic()
            with pytest.raises(CacheError, match="GET failed") as failed:
                await cache.get("u2", 10)
            assert not isinstance(failed.value, CacheUnavailable)
            # waited once, not retried (nor redis-py's default: 5 s, retried)
            assert TIMEOUT <= time.monotonic() - started < 1.8 * TIMEOUT
            with pytest.raises(CacheUnavailable, match="not tried"):
                await cache.get("u1", 10)
            with pytest.raises(CacheUnavailable):
                await cache.set("u1", 10, RECS, 60, 0)
            clock.advance(RETRY_AFTER)  # time to try again, and Redis is still paused
            with pytest.raises(CacheError) as again:
                await cache.get("u1", 10)
            assert not isinstance(again.value, CacheUnavailable)
            server.resume()
            clock.advance(RETRY_AFTER)
            assert (await cache.get("u1", 10)).recs == RECS  # nothing was lost meanwhile
        finally:
            server.resume()
            await cache.close()


async def test_without_a_pause_between_tries_every_call_tries() -> None:
    with redis_server() as server:
        cache = RedisCache(server.url, prefix=unique_prefix("recs"), retry_after_seconds=0)
        try:
            server.stop()
            for _ in range(2):
                with pytest.raises(CacheError, match="Connect") as failed:
                    await cache.get("u1", 10)
                assert not isinstance(failed.value, CacheUnavailable)
        finally:
            await cache.close()


@pytest.mark.parametrize(
    ("timeout", "retry_after", "named"),
    [(0, 1.0, "timeout_seconds"), (0.5, -1.0, "retry_after_seconds")],
)
def test_limits_are_checked(timeout: float, retry_after: float, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RedisCache(
            "redis://127.0.0.1:1/0", timeout_seconds=timeout, retry_after_seconds=retry_after
        )


async def test_with_redis_paused_the_near_copies_still_answer() -> None:
    # nothing can change a user's generation while Redis is paused: what the worker holds near
    # is as fresh as it was (and lives at most its max age); the rest fails within the timeout
    with redis_server() as server:
        cache = await live(
            NearCache(server.url, prefix=unique_prefix("recs"), timeout_seconds=TIMEOUT)
        )
        try:
            await put(cache, "u1", 10, RECS, 60)
            server.pause()
            hits = cache.near_hits
            assert (await cache.get("u1", 10)).recs == RECS
            assert cache.near_hits == hits + 1
            with pytest.raises(CacheError):
                await cache.get("u2", 10)
            assert (await cache.get("u1", 10)).recs == RECS  # not held up by the failure
        finally:
            server.resume()
            await cache.close()
