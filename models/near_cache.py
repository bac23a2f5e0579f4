"""A near copy of the Redis recommendation cache in the worker's memory, dropped on invalidation.

A cache hit through Redis costs the worker a round trip and the client's command handling: on
this project's 2-core machine that is most of a hit's time (docs/decisions/0021). ``NearCache``
is a ``RedisCache`` that also keeps the entries it read or wrote in process memory, so a repeated
hit costs a dictionary lookup. It stays correct through the same generations as Redis:

- every bump of a user's generation is announced on ``<prefix>:invalidated``
  (``feature_store.invalidation.bump_generations``, used by the feature processors and by
  ``invalidate``). A listener task subscribed to it drops those users' near entries, and forgets
  the generation it knew for them;
- a near entry is kept only while the listener is subscribed. Before the subscription is
  confirmed, and from the moment it fails until it is confirmed again, nothing is kept and
  everything is read from Redis (the listener reconnects with backoff);
- an entry read from Redis is kept only if no announcement arrived while it was being read, and a
  list given to ``set`` only if the user's generation this worker knows is still the one it was
  computed at (no announcement since the lookup): a list computed from older features is never
  kept, however the read, the computation and the announcement interleave;
- a near entry lives no longer than its Redis entry (the expiry stored with it) and at most
  ``max_age_seconds``, which bounds how stale an entry can be if announcements stop arriving
  without the connection failing (a silent network partition).

Between a bump and its announcement's arrival (a loopback round trip), a near hit can answer the
list of the old generation, as a Redis read racing the bump could.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from feature_store.invalidation import invalidations_channel
from infra.tasks import cancel_and_wait
from models.cache import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_RETRY_AFTER_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    KEY_PREFIX,
    Lookup,
    RedisCache,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE_SECONDS = 10.0
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
_COMPACT = (",", ":")  # as the worker writes its answers


class _Near(NamedTuple):
    expires_at: float  # wall clock, seconds
    generation: int
    payload: str  # the recommendations as JSON: every get returns a copy


class NearCache(RedisCache):
    """``RedisCache`` with a bounded copy of its entries in process memory (see module).

    ``live`` says whether near entries are being kept (the listener is subscribed);
    ``near_hits`` counts the lookups answered from memory; ``subscriber_name`` is the listener's
    connection name (``CLIENT LIST``). ``clock`` (wall time) ages the near entries;
    ``timeout_seconds`` and ``retry_after_seconds`` bound the Redis calls (``RedisCache``).
    """

    def __init__(
        self,
        url: str,
        prefix: str = KEY_PREFIX,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(url, prefix, timeout_seconds, retry_after_seconds)
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._clock = clock
        self._channel = invalidations_channel(prefix)
        # no transparent reconnects: announcements missed while reconnecting must be noticed
        self.subscriber_name = f"streamrec-near-{uuid.uuid4().hex[:12]}"  # in CLIENT LIST
        self._subscriber = aioredis.from_url(
            url,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            client_name=self.subscriber_name,
        )
        self._near: OrderedDict[tuple[str, str | int], _Near] = OrderedDict()
        self._variants: dict[str, set[str | int]] = {}  # user -> variants held near
        self._known: dict[str, int] = {}  # user -> generation read since the last announcement
        self._announcements = 0  # announcements handled (and resets): reads in flight compare it
        self._listener: asyncio.Task[None] | None = None
        self.live = False
        self.near_hits = 0

    def held(self, user_id: str, variant: str | int) -> str | None:
        """The list held in memory for ``(user_id, variant)``, as JSON text, if fresh: what
        ``get`` would answer without I/O (the worker's hit path writes it as it is)."""
        near = self._fresh((user_id, variant))
        return None if near is None else near.payload

    async def get(self, user_id: str, variant: str | int) -> Lookup:
        """See ``RecommendationCache.get``: from memory when held, else from Redis."""
        self._listen()
        key = (user_id, variant)
        near = self._fresh(key)
        if near is not None:
            return Lookup(json.loads(near.payload), near.generation)
        heard = self._announcements
        entry, generation = await self.read_entry(user_id, variant)
        if self.live and heard == self._announcements:
            self._remember(user_id, generation)
            if entry is not None and "x" in entry:
                payload = json.dumps(entry["recs"], separators=_COMPACT)
                self._keep(key, entry["x"] / 1000, generation, payload)
        return Lookup(None if entry is None else entry["recs"], generation)

    async def set(
        self,
        user_id: str,
        variant: str | int,
        recs: Sequence[dict[str, Any]],
        ttl_seconds: float,
        generation: int,
    ) -> None:
        """See ``RecommendationCache.set``; kept near only if computed at the generation this
        worker still knows for the user."""
        await super().set(user_id, variant, recs, ttl_seconds, generation)
        if self.live and self._known.get(user_id) == generation:
            expires = self._clock() + ttl_seconds
            payload = json.dumps(list(recs), separators=_COMPACT)
            self._keep((user_id, variant), expires, generation, payload)

    async def invalidate(self, user_ids: Collection[str]) -> None:
        """See ``RecommendationCache.invalidate``; this worker's near entries go at once."""
        self._forget_users(user_ids)
        await super().invalidate(user_ids)

    async def close(self) -> None:
        """Stop listening, forget the near entries, close the connections."""
        if self._listener is not None:
            await cancel_and_wait(self._listener)  # one cancel can be lost (Python 3.11)
            self._listener = None
        self._reset()
        await self._subscriber.aclose()
        await super().close()

    def __len__(self) -> int:
        """Entries held in memory."""
        return len(self._near)

    # --- the listener ---------------------------------------------------------------------

    def _listen(self) -> None:
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._run_listener())

    async def _run_listener(self) -> None:
        backoff = RECONNECT_MIN_SECONDS
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._reset()  # whatever was held may have missed announcements
                        self.live = True
                        backoff = RECONNECT_MIN_SECONDS
                    elif message["type"] == "message":
                        self._forget_users(message["data"].split())
            except (RedisError, OSError) as exc:
                if self.live:
                    log.warning("near cache: invalidations lost (%s); reading Redis only", exc)
            finally:
                self.live = False
                self._reset()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)  # then subscribe again
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)

    # --- the near entries -----------------------------------------------------------------

    def _fresh(self, key: tuple[str, str | int]) -> _Near | None:
        """The entry held for ``key`` if it may be answered (counted as a near hit)."""
        near = self._near.get(key)
        if near is None or not self.live:
            return None
        if near.expires_at <= self._clock():
            self._drop(key)
            return None
        self._near.move_to_end(key)
        self.near_hits += 1
        return near

    def _keep(self, key: tuple[str, str | int], expires_at: float, g: int, payload: str) -> None:
        expires_at = min(expires_at, self._clock() + self._max_age)
        self._near[key] = _Near(expires_at, g, payload)
        self._near.move_to_end(key)
        self._variants.setdefault(key[0], set()).add(key[1])
        while len(self._near) > self._max_entries:
            self._drop(next(iter(self._near)))

    def _remember(self, user_id: str, generation: int) -> None:
        if len(self._known) >= 2 * self._max_entries:
            self._known.clear()  # forgetting only costs a set that is not kept near
        self._known[user_id] = generation

    def _forget_users(self, user_ids: Collection[str]) -> None:
        self._announcements += 1
        for user_id in user_ids:
            self._known.pop(user_id, None)
            for variant in list(self._variants.get(user_id, ())):
                self._drop((user_id, variant))

    def _drop(self, key: tuple[str, str | int]) -> None:
        self._near.pop(key, None)
        variants = self._variants.get(key[0])
        if variants is not None:
            variants.discard(key[1])
            if not variants:
                del self._variants[key[0]]

    def _reset(self) -> None:
        self._announcements += 1
        self._near.clear()
        self._variants.clear()
        self._known.clear()
