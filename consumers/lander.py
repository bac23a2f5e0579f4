"""The Parquet lander: a processor that writes every valid event to the offline lake.

It produces the layout a Firehose delivery stream would (see ``feature_store.offline``), so the
lake reads the same whichever of the two wrote it. For now it flushes once per batch: the runtime
checkpoints right after ``process_records`` returns, so the batch must be in S3 by then. Buffering
across batches (fewer, larger files) would have to flush in ``shard_ended`` and
``shutdown_requested`` and hold back checkpoints until it did.
"""

from __future__ import annotations

from consumers.processor import Batch
from feature_store.offline import OfflineStore


class ParquetLander:
    """A ``RecordProcessor`` that lands each batch as Parquet objects (one per arrival hour)."""

    def __init__(self, store: OfflineStore) -> None:
        self._store = store
        self.rows_written = 0
        self.objects_written = 0
        self.rows_failed = 0  # failed conversion to the Glue table's schema: in the error prefix

    async def initialize(self, shard_id: str) -> None:
        """Nothing to prepare: the lander keeps no per-shard state."""

    async def process_records(self, batch: Batch) -> None:
        """Write the batch's events to S3 and register their partitions before returning.

        Raises ``infra.errors.ServiceError`` if S3 or Glue fails; the runtime then redelivers the
        batch, which overwrites the objects already written (their names derive from the batch).
        """
        if not batch.events:
            return
        landed = await self._store.write_events(batch.events)
        self.rows_written += landed.rows
        self.objects_written += len(landed.objects)
        self.rows_failed += landed.failed

    async def shard_ended(self, shard_id: str) -> None:
        """Nothing to flush: every batch was written when it was processed."""

    async def shutdown_requested(self, shard_id: str) -> None:
        """Nothing to flush: every batch was written when it was processed."""

    async def lease_lost(self, shard_id: str) -> None:
        """Nothing buffered: every batch was written when it was processed."""
