"""The feature processor: keeps the online features in DynamoDB fresh, exactly once in effect.

A ``RecordProcessor`` over ``feature_store.updates.FeatureUpdater``, which replay and
point-in-time training sets run too: every row a batch touches is read, folded and written at
most once per batch, conditionally.

Coalescing across batches: a live shard's GetRecords answers are small (a few hundred events
at a few hundred events/s), and a row is written once per batch, so small batches cost about a
write per event. With ``max_events`` and ``max_seconds`` set, the processor holds a shard's
events across answers and applies them together once ``max_events`` are held or the oldest was
held ``max_seconds`` (and on ``shard_ended`` and ``shutdown_requested``; ``lease_lost`` drops
them): fewer writes, for a freshness bounded by ``max_seconds``. Held events are not durable, so
the runtimes hold checkpoints back to before them (``held_from``, ``consumers.holdback``), as
for the lander. ``max_events=0`` (the default) applies every batch before returning.

Invalidation: after a batch's rows are written, ``invalidate`` (if given) is called with the
batch's users, so caches of their recommendations go stale (``feature_store.invalidation``). A
failing or slow invalidation (over ``INVALIDATION_TIMEOUT_SECONDS``) is logged and counted, not
raised: the features are written, and a stale cached list lives at most its cache TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from consumers.processor import Batch
from feature_store.invalidation import Invalidator
from feature_store.online import FeatureStore
from feature_store.positions import Position
from feature_store.transforms import Sequenced
from feature_store.updates import FeatureStats, FeatureUpdater

__all__ = ["FeatureProcessor", "FeatureStats"]

log = logging.getLogger(__name__)

INVALIDATION_TIMEOUT_SECONDS = 1.0
# upper bounds (s) of the freshness histogram: event time to features written; None: no bound
FRESHNESS_BOUNDS_S: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, None)
_BOUNDS_MS = [b * 1000 for b in FRESHNESS_BOUNDS_S if b is not None]


@dataclass
class _Held:
    events: list[Sequenced] = field(default_factory=list)
    started: float = 0.0  # clock time of the first event held
    taken: Position | None = None  # the last event taken from the stream (held or applied)


class FeatureProcessor:
    """A ``RecordProcessor`` that maintains user, item and global features."""

    def __init__(
        self,
        store: FeatureStore,
        concurrency: int = 16,
        *,
        max_events: int = 0,
        max_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        invalidate: Invalidator | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_events < 0 or max_seconds < 0:
            raise ValueError(f"buffer limits must be >= 0, got {max_events}, {max_seconds} s")
        self._updater = FeatureUpdater(store, concurrency)
        self._max_events, self._max_seconds = max_events, max_seconds
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._invalidate = invalidate
        self.invalidation_failures = 0  # batches whose users' caches could not be invalidated
        self._freshness: dict[str, list[int]] = {}
        self._wall = wall_clock  # event times are wall-clock ms: freshness is measured on it
        self.events_in = 0  # events handed to process_records (redeliveries included)

    @property
    def stats(self) -> FeatureStats:
        """Events applied, rows written, write conflicts, write latency."""
        return self._updater.stats

    @property
    def events_out(self) -> int:
        """Events applied to the online store (``events_in`` less those held or skipped)."""
        return self._updater.stats.events

    async def initialize(self, shard_id: str) -> None:
        """Start the shard with nothing held (the runtime reads from its checkpoint)."""
        self._held[shard_id] = _Held()

    async def process_records(self, batch: Batch) -> None:
        """Apply the batch, or hold it and apply what is held once full or old enough.

        Raises when a write fails; held events stay held and are applied by the next call.
        """
        self.events_in += len(batch.events)
        if self._max_events == 0 or self._max_seconds == 0:
            await self._apply(batch.shard_id, batch.events)
            return
        held = self._held.setdefault(batch.shard_id, _Held())
        for s in batch.events:
            if held.taken is not None and s.position <= held.taken:
                continue  # redelivered after a failed call: held or applied already
            if not held.events:
                held.started = self._clock()
            held.events.append(s)
            held.taken = s.position
        if held.events and (
            len(held.events) >= self._max_events
            or self._clock() - held.started >= self._max_seconds
        ):
            await self._apply_held(batch.shard_id)

    def held_from(self, shard_id: str) -> Position | None:
        """The position of the shard's oldest event not yet applied; None when none is held."""
        held = self._held.get(shard_id)
        return held.events[0].position if held and held.events else None

    async def shard_ended(self, shard_id: str) -> None:
        """Apply what is held of the closed shard before its SHARD_END checkpoint."""
        await self._apply_held(shard_id)

    async def shutdown_requested(self, shard_id: str) -> None:
        """Apply what is held, so the runtime's last checkpoint can cover it."""
        await self._apply_held(shard_id)

    async def lease_lost(self, shard_id: str) -> None:
        """Drop what is held, unapplied: the next owner reads it again from the checkpoint."""
        self._held.pop(shard_id, None)

    async def _apply_held(self, shard_id: str) -> None:
        held = self._held.get(shard_id)
        if held is None or not held.events:
            return
        await self._apply(shard_id, held.events)
        held.events = []

    def freshness(self, shard_id: str) -> list[int]:
        """Events of the shard applied since the last call, counted by how long after their event
        time their features were written (``FRESHNESS_BOUNDS_S``); the counts restart at 0."""
        counts = self._freshness.pop(shard_id, None)
        return counts or [0] * len(FRESHNESS_BOUNDS_S)

    def _count_freshness(self, shard_id: str, events: Sequence[Sequenced]) -> None:
        counts = self._freshness.setdefault(shard_id, [0] * len(FRESHNESS_BOUNDS_S))
        now_ms = self._wall() * 1000
        for s in events:  # the slot of the first bound the age is within (the last: none)
            counts[bisect_left(_BOUNDS_MS, now_ms - s.event.timestamp)] += 1

    async def _apply(self, shard_id: str, events: Sequence[Sequenced]) -> None:
        await self._updater.apply(shard_id, events)
        self._count_freshness(shard_id, events)
        if self._invalidate is None or not events:
            return
        users = {s.event.user_id for s in events}
        try:
            await asyncio.wait_for(self._invalidate(users), INVALIDATION_TIMEOUT_SECONDS)
        except Exception:  # the features are written: a stale cache entry only lives its TTL
            self.invalidation_failures += 1
            log.warning(
                "invalidating the cached recommendations of %d users failed (shard %s)",
                len(users),
                shard_id,
                exc_info=True,
            )
