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

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from feature_store.features import (
    POPULAR_KEY,
    ItemFeatures,
    Popular,
    UserFeatures,
    item_key,
    user_key,
)
from feature_store.latency import Latencies
from feature_store.online import BATCH_GET_LIMIT, FeatureStore
from feature_store.positions import Position
from feature_store.rows import Features, Row
from feature_store.transforms import (
    COVIS_WEIGHTS,
    Sequenced,
    covisit_windows,
    covisited,
    fold_item,
    fold_user,
    merge_popular,
)

Compute = Callable[[Row | None], Row | None]  # stored row -> row to write, or None: nothing new
MAX_CONFLICT_RETRIES = 20


@dataclass
class FeatureStats:
    """What the processor did, for logs, metrics and the demo summary."""

    events: int = 0  # events applied (a redelivered batch counts again)
    rows_written: int = 0
    write_conflicts: int = 0  # conditional writes rejected: the row moved since it was read
    write_seconds: Latencies = field(default_factory=Latencies)  # per write_rows call


class _Covisits:
    """What a batch brings the item rows through co-visitation: the sums per item pair, and how
    to recount them for a row that already took part of the batch."""

    def __init__(self) -> None:
        self.sums: defaultdict[str, dict[str, int]] = defaultdict(dict)
        self._histories: list[tuple[UserFeatures, list[Sequenced]]] = []
        self._by_item: defaultdict[str, list[tuple[Position, str, int]]] | None = None

    def add(self, history: UserFeatures, events: list[Sequenced]) -> None:
        """Add the pairs of one user's ``events`` (above its mark), given its stored state."""
        self._histories.append((history, events))
        sums = self.sums
        for item, others in covisited(history, events):
            forward = sums[item]
            get = forward.get
            for other, weight in zip(others, COVIS_WEIGHTS):  # noqa: B905 (others is shorter)
                forward[other] = get(other, 0) + weight
                back = sums[other]
                back[item] = back.get(item, 0) + weight

    def above(self, item_id: str, mark: Position) -> list[tuple[str, int]]:
        """The co-visits ``item_id`` takes from records above ``mark``, recounted (the rare
        case: redelivery after a partial write)."""
        if self._by_item is None:
            self._by_item = defaultdict(list)
            for history, events in self._histories:
                for source, window in covisit_windows(history, events):
                    item = source.event.item_id
                    for other, weight in window:
                        self._by_item[item].append((source.position, other, weight))
                        self._by_item[other].append((source.position, item, weight))
        return [(other, w) for at, other, w in self._by_item.get(item_id, ()) if at > mark]


class FeatureUpdater:
    """Applies batches of one shard's events to the user, item and global rows of a store."""

    def __init__(self, store: FeatureStore, concurrency: int = 16) -> None:
        self._store = store
        self._concurrency = concurrency
        self.stats = FeatureStats()

    async def apply(self, shard_id: str, events: Sequence[Sequenced]) -> None:
        """Apply ``events`` (one shard's, in stream order) to every row they touch; returns once
        all writes succeeded. Raising leaves some rows written: applying the same events again
        (redelivery) completes the others without double counting."""
        if not events:
            return
        shard, first, last = shard_id, events[0].position, events[-1].mark
        by_user: defaultdict[str, list[Sequenced]] = defaultdict(list)
        by_item: defaultdict[str, list[Sequenced]] = defaultdict(list)
        for s in events:
            by_user[s.event.user_id].append(s)
            by_item[s.event.item_id].append(s)
        user_keys = [user_key(u) for u in by_user]
        user_rows = dict(zip(user_keys, await self._store.read_rows(user_keys), strict=True))

        covisits = _Covisits()
        for key, user_events in zip(user_keys, by_user.values(), strict=True):
            stored = user_rows[key]
            # user rows are written after every item row of the batch: events at or below the
            # user's mark already took effect on the items, and the stored state is exactly the
            # user's history before the events above it
            if stored is None:
                covisits.add(UserFeatures(user_events[0].event.user_id), user_events)
                continue
            assert isinstance(stored.features, UserFeatures)
            mark = stored.mark(shard)
            new = user_events if mark < first else [s for s in user_events if s.position > mark]
            if new:
                covisits.add(stored.features, new)

        item_ids = list(by_item.keys() | covisits.sums.keys())
        item_ids.sort()  # the same order every time: conflicting writers meet rows alike
        no_events: list[Sequenced] = []
        end = events[-1].position
        no_covisits: dict[str, int] = {}

        def item_compute(item_id: str) -> Compute:
            item_events = by_item.get(item_id, no_events)
            sums = covisits.sums.get(item_id, no_covisits)

            def compute(stored: Row | None) -> Row | None:
                row = stored or Row(item_key(item_id), ItemFeatures(item_id))
                mark = row.mark(shard)
                if mark < first:  # the usual case: the row took nothing of this batch yet
                    taken = [s.event for s in item_events]
                    pairs: Iterable[tuple[str, int]] | dict[str, int] = sums
                elif mark >= end:
                    return None  # it took the whole batch
                else:
                    taken = [s.event for s in item_events if s.position > mark]
                    pairs = covisits.above(item_id, mark)
                    if not taken and not pairs:
                        return None
                assert isinstance(row.features, ItemFeatures)
                return _advance(row, fold_item(row.features, taken, pairs), shard, last)

            return compute

        touched: list[ItemFeatures] = []
        for start in range(0, len(item_ids), BATCH_GET_LIMIT):
            # read each chunk just before writing it: a short read-write window, few conflicts
            chunk = [item_key(i) for i in item_ids[start : start + BATCH_GET_LIMIT]]
            stored_items = dict(zip(chunk, await self._store.read_rows(chunk), strict=True))
            computes = {k: item_compute(i) for k, i in zip(chunk, item_ids[start:], strict=False)}
            for row in (await self._write(computes, stored_items)).values():
                if row is not None and isinstance(row.features, ItemFeatures):
                    touched.append(row.features)
        users = {
            key: _user_compute(user_id, user_events, shard, last)
            for key, (user_id, user_events) in zip(user_keys, by_user.items(), strict=True)
        }
        await self._write(users, user_rows)
        (popular,) = await self._store.read_rows([POPULAR_KEY])
        await self._write({POPULAR_KEY: _popular_compute(touched)}, {POPULAR_KEY: popular})
        self.stats.events += len(events)

    async def _write(
        self, computes: dict[str, Compute], stored: dict[str, Row | None]
    ) -> dict[str, Row | None]:
        """Write ``compute(stored)`` of every row, together; rows whose write was rejected (a
        version conflict) are re-read and recomputed. Returns each row as written (or as stored
        when there was nothing new). A failed write cancels the others before it raises, so no
        write of the batch lands after this raised."""
        result: dict[str, Row | None] = {}
        pending = dict(stored)
        for _ in range(MAX_CONFLICT_RETRIES):
            rows: dict[str, Row] = {}
            for key, row in pending.items():
                new = computes[key](row)
                if new is None:
                    result[key] = row
                else:
                    rows[key] = new
            if not rows:
                return result
            started = time.perf_counter()
            accepted = await self._store.write_rows(list(rows.values()), self._concurrency)
            self.stats.write_seconds.observe(time.perf_counter() - started)
            rejected = []
            for (key, row), ok in zip(rows.items(), accepted, strict=True):
                if ok:
                    result[key] = row
                else:
                    rejected.append(key)
            self.stats.rows_written += len(rows) - len(rejected)
            self.stats.write_conflicts += len(rejected)
            if not rejected:
                return result
            pending = dict(zip(rejected, await self._store.read_rows(rejected), strict=True))
        raise RuntimeError(
            f"rows {sorted(pending)[:3]}: still conflicting after {MAX_CONFLICT_RETRIES} retries"
        )


def _user_compute(user_id: str, events: Sequence[Sequenced], shard: str, last: str) -> Compute:
    def compute(stored: Row | None) -> Row | None:
        row = stored or Row(user_key(user_id), UserFeatures(user_id))
        new = [s for s in events if s.position > row.mark(shard)]
        if not new:
            return None
        assert isinstance(row.features, UserFeatures)
        return _advance(row, fold_user(row.features, new), shard, last)

    return compute


def _popular_compute(items: list[ItemFeatures]) -> Compute:
    def compute(stored: Row | None) -> Row | None:
        row = stored or Row(POPULAR_KEY, Popular())
        assert isinstance(row.features, Popular)
        merged = merge_popular(row.features, items)
        return None if merged == row.features else replace(row, features=merged)

    return compute


def _advance(row: Row, features: Features, shard: str, last: str) -> Row:
    """The row with new features and this shard's mark moved to the batch's last record."""
    return Row(row.key, features, row.version, {**row.marks, shard: last})
