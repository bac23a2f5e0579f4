"""The processor protocol, in the KCL's vocabulary, and the batch a runtime hands to it.

A runtime (the embedded runner; later the KCL adapter and Lambda) decodes each record once,
sends poison records to the dead-letter prefix, and hands the valid events of a shard to every
processor in stream order. It checkpoints only after ``process_records`` returned for all of
them, so a processor must have made its writes durable before it returns, unless it says what
it still holds: a processor may also define ``held_from(shard_id) -> Position | None`` (the
oldest event of the shard it buffers, unwritten), and the runtime then checkpoints no further
than the batch before it (``consumers.holdback``). While something is held, ``process_records``
is also called with an empty batch when the shard has nothing new, so buffers can age out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from feature_store.transforms import Sequenced


@dataclass(frozen=True)
class Batch:
    """The valid events of one GetRecords call on one shard, in stream order."""

    shard_id: str
    events: Sequence[Sequenced]
    millis_behind_latest: int = 0


class RecordProcessor(Protocol):
    """What a runtime drives. One instance serves every shard; calls for one shard never overlap."""

    async def initialize(self, shard_id: str) -> None:
        """The runtime starts reading ``shard_id``."""

    async def process_records(self, batch: Batch) -> None:
        """Apply ``batch`` durably. Raising stops the shard at its last checkpoint (redelivery)."""

    async def shard_ended(self, shard_id: str) -> None:
        """The shard was closed (resharding) and fully read: flush everything of it."""

    async def shutdown_requested(self, shard_id: str) -> None:
        """The runtime stops reading ``shard_id``: flush what is buffered."""

    async def lease_lost(self, shard_id: str) -> None:
        """Another worker reads ``shard_id`` now (or the runtime restarts it): drop what is
        buffered for it, unwritten; no checkpoint of this runtime will cover it any more."""
