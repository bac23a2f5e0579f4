"""Applying events to the online store, exactly once in effect: what the stream processor, replay
and point-in-time training sets all run.

For one batch of one shard it reads the rows the batch touches (users, items, the popularity
list), folds in the events each row has not seen yet (those above the row's high-water mark for
this shard), and writes every row at most once, conditionally on the version it read. A rejected
write is retried from a fresh read, so the recomputation uses only the records above the stored
mark: redelivery, crashes between writes and re-batching never double count.

Item rows are written before user rows. Co-visitation pairs come from the user's history, and
only a user row that has not taken an event yet holds the exact history before it (the recent
list is deduplicated and bounded, so an event cannot be taken out again). Written last, a user
row's mark also proves that the items took every event at or below it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from feature_store.features import (
    POPULAR_KEY,
    ItemFeatures,
    Popular,
    UserFeatures,
    item_key,
    user_key,
)
from feature_store.online import BATCH_GET_LIMIT, FeatureStore
from feature_store.positions import BEFORE_ALL, Position
from feature_store.rows import Row
from feature_store.transforms import (
    CovisitWindow,
    Sequenced,
    covisit_windows,
    fold_item,
    fold_user,
    merge_popular,
)
from infra.tasks import gather_or_cancel
from producers.events import Event

Compute = Callable[[Row | None], Row | None]  # stored row -> row to write, or None: nothing new
MAX_CONFLICT_RETRIES = 20


@dataclass
class FeatureStats:
    """What the processor did, for logs and the demo summary."""

    events: int = 0
    rows_written: int = 0
    write_conflicts: int = 0


@dataclass
class _ItemDelta:
    """What a batch brings one item row: its events, and the co-visits summed per item."""

    item_id: str
    sources: list[tuple[Sequenced, CovisitWindow]]  # every event's window, shared by all items
    events: list[Sequenced] = field(default_factory=list)
    covisits: dict[str, int] = field(default_factory=dict)

    def above(self, mark: Position, first: Position) -> tuple[list[Event], list[tuple[str, int]]]:
        """The events and co-visits from records above ``mark``. The usual case, a row that
        took nothing of this batch yet (``mark`` before the batch's ``first`` record), takes
        them all, summed; otherwise (redelivery after a partial write) they are recounted from
        the records above the mark."""
        if mark < first:
            return [s.event for s in self.events], list(self.covisits.items())
        events = [s.event for s in self.events if s.position > mark]
        covisits: list[tuple[str, int]] = []
        for source, window in self.sources:
            if source.position <= mark:
                continue
            if source.event.item_id == self.item_id:
                covisits += window
            else:
                covisits += [
                    (source.event.item_id, w) for other, w in window if other == self.item_id
                ]
        return events, covisits


class _Deltas(dict[str, _ItemDelta]):
    """Item deltas by item id, made on first use (a dict hit stays a C-speed lookup)."""

    def __init__(self, sources: list[tuple[Sequenced, CovisitWindow]]) -> None:
        super().__init__()
        self._sources = sources

    def __missing__(self, item_id: str) -> _ItemDelta:
        made = self[item_id] = _ItemDelta(item_id, self._sources)
        return made


class FeatureUpdater:
    """Applies batches of one shard's events to the user, item and global rows of a store."""

    def __init__(self, store: FeatureStore, concurrency: int = 16) -> None:
        self._store = store
        self._limit = asyncio.Semaphore(concurrency)
        self.stats = FeatureStats()

    async def apply(self, shard_id: str, events: Sequence[Sequenced]) -> None:
        """Apply ``events`` (one shard's, in stream order) to every row they touch; returns once
        all writes succeeded. Raising leaves some rows written: applying the same events again
        (redelivery) completes the others without double counting."""
        if not events:
            return
        shard, first, last = shard_id, events[0].position, events[-1].mark
        total = len(events)
        by_user: dict[str, list[Sequenced]] = defaultdict(list)
        for s in events:
            by_user[s.event.user_id].append(s)
        user_keys = [user_key(u) for u in by_user]
        user_rows = dict(zip(user_keys, await self._store.read_rows(user_keys), strict=True))

        sources: list[tuple[Sequenced, CovisitWindow]] = []
        deltas = _Deltas(sources)

        for user_id, user_events in by_user.items():
            stored = user_rows[user_key(user_id)]
            state = stored.features if stored else UserFeatures(user_id)
            assert isinstance(state, UserFeatures)
            for s in user_events:
                deltas[s.event.item_id].events.append(s)
            # user rows are written after every item row of the batch: events at or below the
            # user's mark already took effect on the items, and the stored state is exactly the
            # user's history before the events above it
            mark = stored.mark(shard) if stored else BEFORE_ALL
            new = [s for s in user_events if s.position > mark]
            for source, window in covisit_windows(state, new):
                if not window:
                    continue
                sources.append((source, window))
                item_id = source.event.item_id
                forward = deltas[item_id].covisits
                for other, weight in window:
                    forward[other] = forward.get(other, 0) + weight
                    back = deltas[other].covisits
                    back[item_id] = back.get(item_id, 0) + weight

        items = {item_key(i): _item_compute(i, d, shard, first, last) for i, d in deltas.items()}
        keys = list(items)
        written: list[Row | None] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            # read each chunk just before writing it: a short read-write window, few conflicts
            chunk = keys[start : start + BATCH_GET_LIMIT]
            stored_items = dict(zip(chunk, await self._store.read_rows(chunk), strict=True))
            written += await self._apply_all({k: items[k] for k in chunk}, stored_items)
        users = {u: _user_compute(u, events, shard, last) for u, events in by_user.items()}
        await self._apply_all({user_key(u): c for u, c in users.items()}, user_rows)
        touched = [
            row.features
            for row in written
            if row is not None and isinstance(row.features, ItemFeatures)
        ]
        (popular,) = await self._store.read_rows([POPULAR_KEY])
        await self._apply(POPULAR_KEY, _popular_compute(touched), popular)
        self.stats.events += total

    async def _apply_all(
        self, computes: dict[str, Compute], stored: dict[str, Row | None]
    ) -> list[Row | None]:
        """Apply every row concurrently; a failed write cancels the others before it raises, so
        no write of the batch lands after ``apply`` raised."""
        return await gather_or_cancel(self._apply(k, c, stored[k]) for k, c in computes.items())

    async def _apply(self, key: str, compute: Compute, stored: Row | None) -> Row | None:
        """Write ``compute(stored)``; on a version conflict re-read and recompute. Returns the row
        as written (or as stored when there was nothing new)."""
        async with self._limit:
            for _ in range(MAX_CONFLICT_RETRIES):
                row = compute(stored)
                if row is None:
                    return stored
                if await self._store.write_row(row):
                    self.stats.rows_written += 1
                    return row
                self.stats.write_conflicts += 1
                (stored,) = await self._store.read_rows([key])
        raise RuntimeError(f"row {key!r}: still conflicting after {MAX_CONFLICT_RETRIES} retries")


def _user_compute(user_id: str, events: Sequence[Sequenced], shard: str, last: str) -> Compute:
    def compute(stored: Row | None) -> Row | None:
        row = stored or Row(user_key(user_id), UserFeatures(user_id))
        new = [s for s in events if s.position > row.mark(shard)]
        if not new:
            return None
        assert isinstance(row.features, UserFeatures)
        return _advance(row, fold_user(row.features, new), shard, last)

    return compute


def _item_compute(
    item_id: str, delta: _ItemDelta, shard: str, first: Position, last: str
) -> Compute:
    def compute(stored: Row | None) -> Row | None:
        row = stored or Row(item_key(item_id), ItemFeatures(item_id))
        events, covisited = delta.above(row.mark(shard), first)
        if not events and not covisited:
            return None
        assert isinstance(row.features, ItemFeatures)
        return _advance(row, fold_item(row.features, events, covisited), shard, last)

    return compute


def _popular_compute(items: list[ItemFeatures]) -> Compute:
    def compute(stored: Row | None) -> Row | None:
        row = stored or Row(POPULAR_KEY, Popular())
        assert isinstance(row.features, Popular)
        merged = merge_popular(row.features, items)
        return None if merged == row.features else replace(row, features=merged)

    return compute


def _advance(row: Row, features: object, shard: str, last: str) -> Row:
    """The row with new features and this shard's mark moved to the batch's last record."""
    return replace(row, features=features, marks={**row.marks, shard: last})
