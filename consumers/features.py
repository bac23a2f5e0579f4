"""The feature processor: keeps the online features in DynamoDB fresh, exactly once in effect.

A thin ``RecordProcessor`` over ``feature_store.updates.FeatureUpdater``, which replay and
point-in-time training sets run too: each batch is applied (every row it touches read, folded
and written at most once, conditionally) before ``process_records`` returns, so nothing is
buffered and every lifecycle call has nothing to do.
"""

from __future__ import annotations

from consumers.processor import Batch
from feature_store.online import FeatureStore
from feature_store.updates import FeatureStats, FeatureUpdater

__all__ = ["FeatureProcessor", "FeatureStats"]


class FeatureProcessor:
    """A ``RecordProcessor`` that maintains user, item and global features."""

    def __init__(self, store: FeatureStore, concurrency: int = 16) -> None:
        self._updater = FeatureUpdater(store, concurrency)

    @property
    def stats(self) -> FeatureStats:
        """Events applied, rows written, write conflicts."""
        return self._updater.stats

    async def initialize(self, shard_id: str) -> None:
        """Nothing to prepare: all state lives in the store."""

    async def process_records(self, batch: Batch) -> None:
        """Apply the batch to every row it touches; returns once all writes succeeded."""
        await self._updater.apply(batch.shard_id, batch.events)

    async def shard_ended(self, shard_id: str) -> None:
        """Nothing buffered: every batch is written before ``process_records`` returns."""

    async def shutdown_requested(self, shard_id: str) -> None:
        """Nothing buffered: every batch is written before ``process_records`` returns."""

    async def lease_lost(self, shard_id: str) -> None:
        """Nothing buffered: every batch is written before ``process_records`` returns."""
