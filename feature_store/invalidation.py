"""Telling the recommendation caches that users' features changed: a generation per user.

The feature processor calls an invalidator with the users of every batch it has written; the
invalidator bumps each user's *generation* in Redis (``INCR <prefix>:g:<user_id>``). A cached
recommendation list records the generation it was computed at and counts as stale once the
user's generation moved on (``models.cache``), so a list computed from features read before the
write never outlives it, whatever the timing of the two.

Each bump also publishes the users, space-separated, on ``<prefix>:invalidated``: workers that
keep a near copy of the cache in process memory (``models.near_cache``) drop theirs from it.

Generation keys live ``GENERATION_TTL_SECONDS`` (a week) after their last bump. A key that
expired reads as 0, and any entry stored under a higher generation becomes stale: the safe
direction. Cache entries must therefore live shorter than that (``RedisCache`` refuses longer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from infra.errors import StreamrecError

GENERATION_TTL_SECONDS = 7 * 24 * 3600

# What the feature processor calls after a batch's rows are written: the users they changed.
Invalidator = Callable[[Collection[str]], Awaitable[None]]


class InvalidationError(StreamrecError):
    """The generations could not be bumped: cached lists of these users stay until their TTL."""


def generation_key(prefix: str, user_id: str) -> str:
    """The Redis key of ``user_id``'s generation under the cache's ``prefix``."""
    return f"{prefix}:g:{user_id}"


def invalidations_channel(prefix: str) -> str:
    """The Redis channel on which bumps of generations under ``prefix`` are announced."""
    return f"{prefix}:invalidated"


async def bump_generations(redis: aioredis.Redis, prefix: str, user_ids: Collection[str]) -> None:
    """Move each user's generation on, push its expiry back and announce the users on the
    invalidations channel, in one pipelined round trip (raises ``RedisError``). The feature
    processors' invalidator and the cache's own ``invalidate`` both bump this way. User ids have
    no spaces (``producers.events.ID_PATTERN``)."""
    if not user_ids:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            key = generation_key(prefix, user_id)
            pipe.incr(key)
            pipe.expire(key, GENERATION_TTL_SECONDS)
        # after the bumps: a worker that hears of it and reads again sees the new generation
        pipe.publish(invalidations_channel(prefix), " ".join(user_ids))
        await pipe.execute()


class RedisInvalidator:
    """Bumps users' generations in the Redis that the recommendation cache uses."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self.bumped = 0  # users whose generation this invalidator bumped

    async def __call__(self, user_ids: Collection[str]) -> None:
        """Bump the generation of every user in ``user_ids`` (one round trip)."""
        if not user_ids:
            return
        try:
            await bump_generations(self._redis, self._prefix, user_ids)
        except RedisError as exc:
            raise InvalidationError(f"bumping {len(user_ids)} generations failed: {exc}") from exc
        self.bumped += len(user_ids)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
