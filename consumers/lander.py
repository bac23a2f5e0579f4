"""The Parquet lander: a processor that writes every valid event to the offline lake.

It produces the layout a Firehose delivery stream would (see ``feature_store.offline``), so the
lake reads the same whichever of the two wrote it, and buffers like Firehose: per shard, events
are held across batches and written when the buffer reaches ``max_bytes`` (of event JSON, as
Firehose counts the incoming data) or is ``max_seconds`` old, and on ``shard_ended`` and
``shutdown_requested``; ``lease_lost`` drops them unwritten. ``max_bytes=0`` or
``max_seconds=0`` writes every batch before ``process_records`` returns.

Held events are not durable, so the runtime must not checkpoint past them: ``held_from`` says
where a shard's buffer starts, and the runtimes hold their checkpoints back to before it
(``consumers.holdback``). The interval is checked when the runtime calls ``process_records``,
which the runtimes also do with an empty batch on an empty answer while something is held.

After a failed batch the runtime reads again from its checkpoint, which lies before the buffer:
events at or before the last one this lander took (buffered or already written) are skipped, so
a redelivery never lands twice from one process. Across processes (a crash), the restarted one
rebuilds the buffer from the same first record, and the object names derive from it: the
rewrite replaces the objects written before the crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consumers.processor import Batch
from feature_store.offline import OfflineStore
from feature_store.positions import Position
from feature_store.transforms import Sequenced


@dataclass
class _Buffer:
    events: list[Sequenced] = field(default_factory=list)
    size: int = 0  # bytes of event JSON
    started: float = 0.0  # clock time of the first event held
    taken: Position | None = None  # the last event taken from the stream (held or written)


class ParquetLander:
    """A ``RecordProcessor`` that lands events as Parquet objects (one per arrival hour and
    flush), buffering per shard by size and age."""

    def __init__(
        self,
        store: OfflineStore,
        *,
        max_bytes: int = 0,
        max_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes < 0 or max_seconds < 0:
            raise ValueError(f"buffer limits must be >= 0, got {max_bytes} B, {max_seconds} s")
        self._store = store
        self._max_bytes, self._max_seconds = max_bytes, max_seconds
        self._clock = clock
        self._buffers: dict[str, _Buffer] = {}
        self.events_in = 0  # events handed to process_records (redeliveries included)
        self.rows_written = 0
        self.objects_written = 0
        self.rows_failed = 0  # failed conversion to the Glue table's schema: in the error prefix

    @property
    def events_out(self) -> int:
        """Events written to the lake (``events_in`` less those held, skipped or failed)."""
        return self.rows_written

    async def initialize(self, shard_id: str) -> None:
        """Start the shard with an empty buffer (the runtime reads from its checkpoint)."""
        self._buffers[shard_id] = _Buffer()

    async def process_records(self, batch: Batch) -> None:
        """Hold the batch's events; write the shard's buffer if it is full or old enough.

        Raises ``infra.errors.ServiceError`` if S3 or Glue fails; the buffer is kept, and
        written again by the next call.
        """
        self.events_in += len(batch.events)
        buffer = self._buffers.setdefault(batch.shard_id, _Buffer())
        for s in batch.events:
            if buffer.taken is not None and s.position <= buffer.taken:
                continue  # redelivered after a failed batch: held or written already
            if not buffer.events:
                buffer.started = self._clock()
            buffer.events.append(s)
            buffer.size += len(s.event.to_json())
            buffer.taken = s.position
        if buffer.events and self._due(buffer):
            await self._flush(buffer)

    def held_from(self, shard_id: str) -> Position | None:
        """The position of the shard's oldest event not yet written; None when none is held."""
        buffer = self._buffers.get(shard_id)
        return buffer.events[0].position if buffer and buffer.events else None

    async def shard_ended(self, shard_id: str) -> None:
        """Write what is held of the closed shard before its SHARD_END checkpoint."""
        await self._flush_shard(shard_id)

    async def shutdown_requested(self, shard_id: str) -> None:
        """Write what is held, so the runtime's last checkpoint can cover it."""
        await self._flush_shard(shard_id)

    async def lease_lost(self, shard_id: str) -> None:
        """Drop what is held, unwritten: the next owner reads it again from the checkpoint."""
        self._buffers.pop(shard_id, None)

    def _due(self, buffer: _Buffer) -> bool:
        if self._max_bytes == 0 or self._max_seconds == 0:
            return True
        return buffer.size >= self._max_bytes or (
            self._clock() - buffer.started >= self._max_seconds
        )

    async def _flush_shard(self, shard_id: str) -> None:
        buffer = self._buffers.get(shard_id)
        if buffer is not None and buffer.events:
            await self._flush(buffer)

    async def _flush(self, buffer: _Buffer) -> None:
        landed = await self._store.write_events(buffer.events)
        buffer.events, buffer.size = [], 0
        self.rows_written += landed.rows
        self.objects_written += len(landed.objects)
        self.rows_failed += landed.failed
