"""Held-back checkpoints (pure): never checkpoint past a record a processor still buffers.

DESIGN.md: checkpoint only after the writes of the records below the checkpoint succeeded. A
buffering processor (the Parquet lander) returns from ``process_records`` with events still in
memory, so the runtime may not checkpoint the batch's end yet. It asks each processor, after
every batch, where its buffer of the shard starts (``held_from(shard_id)``, optional: a processor
without it holds nothing) and checkpoints the newest batch end strictly before the oldest held
position. Batches after it stay pending until the holds move past them (a flush).

Batch ends are positions of whole Kinesis records: a runtime that checkpoints by sequence number
passes ``Position(sequence, LAST_SUB)``, so a hold inside a KPL-aggregated record keeps the whole
record (its sequence number) uncheckpointed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from feature_store.positions import Position

LAST_SUB = 2**31  # above any sub-sequence number: the end of a whole (aggregated) record


@runtime_checkable
class Holding(Protocol):
    """A processor that may hold events of a shard in memory after ``process_records``."""

    def held_from(self, shard_id: str) -> Position | None:
        """The position of the oldest event of ``shard_id`` not yet durable; None: none."""


def record_end(sequence_number: str) -> Position:
    """The batch end of a batch whose last Kinesis record is ``sequence_number``."""
    return Position(int(sequence_number), LAST_SUB)


class Holdback:
    """The batch ends of one shard not yet checkpointed, and which of them may be now."""

    def __init__(self) -> None:
        self._pending: deque[tuple[Position, int]] = deque()
        self._last: Position | None = None
        self.records = 0  # records of the pending batches: processed, not yet checkpointable

    def processed(
        self, end: Position | None, count: int, processors: Sequence[object], shard_id: str
    ) -> Position | None:
        """A batch of ``count`` records ending at ``end`` (None: an empty answer) went through
        every processor; the position to checkpoint now, or None when it has not moved.

        Raises ``ValueError`` if ``end`` is not after the previous batch's end.
        """
        if end is not None:
            if self._last is not None and end <= self._last:
                raise ValueError(f"batch end {end} is not after the previous one, {self._last}")
            self._last = end
            self._pending.append((end, count))
            self.records += count
        held = oldest_hold(processors, shard_id)
        released: Position | None = None
        while self._pending and (held is None or self._pending[0][0] < held):
            released, done = self._pending.popleft()
            self.records -= done
        return released

    @property
    def last_record(self) -> str | None:
        """The sequence number of the last record processed (checkpointed or pending); None
        before the first batch. An expired iterator is renewed after it: the pending batches
        were processed, so reading them again would only repeat them."""
        return None if self._last is None else str(self._last.sequence)

    def reset(self) -> None:
        """Forget every pending batch (the shard restarts from its checkpoint)."""
        self._pending.clear()
        self._last = None
        self.records = 0


def oldest_hold(processors: Sequence[object], shard_id: str) -> Position | None:
    """The oldest position any of ``processors`` holds of ``shard_id``; None: nothing held."""
    holds = [
        hold
        for p in processors
        if isinstance(p, Holding) and (hold := p.held_from(shard_id)) is not None
    ]
    return min(holds, default=None)
