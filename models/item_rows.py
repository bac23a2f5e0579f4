"""Item rows as the worker reads them: through a short-lived, bounded copy, one read per item.

A recommendation computed afresh (a cache miss) needs the user's row and the co-visitation rows
of the user's ``SOURCE_ITEMS`` newest items. The user's row is read every time (strongly
consistent: it is what a new event changes); the item rows are shared by every user who saw those
items, so the worker keeps each one it read for 75 to 100% of ``max_age_seconds`` (at random, so
that rows read together are not read again together; at most ``max_entries`` of them, least
recently read dropped first). Concurrent misses that need the same unread item wait
for one read of it, not one each; a request that gives up (its deadline) does not cancel a read
others wait for, and the rows it brings are kept for the next request.

An item row served from the copy is at most ``max_age_seconds`` old: the same bound as the global
popularity row (``POPULAR_MAX_AGE_SECONDS``), and far below the cached answers' TTL, which already
let a user's list ignore other users' new events for a minute (docs/decisions/0022). Items never
seen (no row) are not kept: the first event of a new item must show at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from cachetools import TLRUCache

from feature_store.features import ItemFeatures

Read = Callable[[Sequence[str]], Awaitable[list[ItemFeatures | None]]]


class ItemRows:
    """Item features read through ``read`` (aligned with the ids asked, ``None`` for an unknown
    item), kept up to ``max_age_seconds``; ``max_age_seconds=0`` reads every time."""

    def __init__(
        self,
        read: Read,
        max_age_seconds: float = 0.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age_seconds < 0 or max_entries < 1:
            raise ValueError(
                f"max_age_seconds must be >= 0 and max_entries >= 1, not "
                f"{max_age_seconds} and {max_entries}"
            )
        self._read = read
        self._max_age = max_age_seconds
        # each copy expires at a random point of the last quarter of its max age: rows read
        # together (a worker's first requests) are not all read again in the same instant
        jitter = random.Random(0)
        self._copies: TLRUCache[str, ItemFeatures] = TLRUCache(
            max_entries,
            lambda _key, _value, now: now + max_age_seconds * (0.75 + 0.25 * jitter.random()),
            timer=clock,
        )
        self._reading: dict[str, asyncio.Task[dict[str, ItemFeatures | None]]] = {}
        self.reads = 0  # item rows read from the store (one per unknown or expired item asked)

    async def get(self, item_ids: Sequence[str]) -> list[ItemFeatures | None]:
        """The features of each of ``item_ids``, aligned with them."""
        if not self._max_age:
            self.reads += len(item_ids)
            return await self._read(item_ids)
        found: dict[str, ItemFeatures | None] = {}
        pending: set[asyncio.Task[dict[str, ItemFeatures | None]]] = set()
        unread: list[str] = []
        for item_id in dict.fromkeys(item_ids):
            copy = self._copies.get(item_id)
            if copy is not None:
                found[item_id] = copy
            elif item_id in self._reading:
                pending.add(self._reading[item_id])
            else:
                unread.append(item_id)
        if unread:
            pending.add(self._start_read(unread))
        for task in pending:
            # shielded: this request giving up must not cancel a read others wait for
            found.update(await asyncio.shield(task))
        return [found.get(item_id) for item_id in item_ids]

    def _start_read(self, item_ids: list[str]) -> asyncio.Task[dict[str, ItemFeatures | None]]:
        task = asyncio.ensure_future(self._read_many(item_ids))
        for item_id in item_ids:
            self._reading[item_id] = task

        def done(finished: asyncio.Task[dict[str, ItemFeatures | None]]) -> None:
            for item_id in item_ids:
                if self._reading.get(item_id) is finished:
                    del self._reading[item_id]
            if not finished.cancelled():
                finished.exception()  # retrieved: a failure is raised to every waiter instead

        task.add_done_callback(done)
        return task

    async def _read_many(self, item_ids: list[str]) -> dict[str, ItemFeatures | None]:
        self.reads += len(item_ids)
        rows = dict(zip(item_ids, await self._read(item_ids), strict=True))
        for item_id, features in rows.items():
            if features is not None:
                self._copies[item_id] = features
        return rows

    def __len__(self) -> int:
        """Item rows held now (expired ones may count until the next access)."""
        return len(self._copies)
