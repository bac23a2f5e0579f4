"""The stores and sinks every runtime's wiring builds the same way from the settings.

Kept apart from ``streamrec.wiring`` so that the KCL's per-shard process (``kcl_entry``) can
build its processors without importing the API and the cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from consumers.dead_letter import DeadLetterSink
from consumers.features import FeatureProcessor
from consumers.lander import ParquetLander
from consumers.processor import RecordProcessor
from feature_store.invalidation import Invalidator, RedisInvalidator
from feature_store.offline import OfflineStore
from feature_store.online import FeatureStore
from infra.settings import Settings


def offline_store_of(settings: Settings, s3: Any, glue: Any) -> OfflineStore:
    """The offline store (Parquet in S3, the Glue table) the settings name."""
    return OfflineStore(
        s3,
        glue,
        bucket=settings.bucket,
        prefix=settings.events_prefix,
        database=settings.glue_database,
        table=settings.glue_events_table,
        stream_name=settings.stream_name,
        errors_prefix=settings.lake_errors_prefix,
    )


def lander_of(settings: Settings, offline: OfflineStore) -> ParquetLander:
    """The Parquet lander over ``offline``, buffering as the settings say."""
    return ParquetLander(
        offline, max_bytes=settings.lake_buffer_bytes, max_seconds=settings.lake_buffer_seconds
    )


def features_of(
    settings: Settings, online: FeatureStore, invalidate: Invalidator | None = None
) -> FeatureProcessor:
    """The feature processor over ``online``, coalescing batches as the settings say, and
    invalidating the written users' cached recommendations through ``invalidate``."""
    return FeatureProcessor(
        online,
        max_events=settings.feature_buffer_events,
        max_seconds=settings.feature_buffer_seconds,
        invalidate=invalidate,
    )


@asynccontextmanager
async def invalidator_of(settings: Settings) -> AsyncIterator[Invalidator | None]:
    """The invalidator of the Redis cache the settings name (None without Redis: a process-memory
    cache is only invalidated by its own process), closed when the block ends."""
    if not settings.redis_url:
        yield None
        return
    invalidator = RedisInvalidator(settings.redis_url, settings.cache_prefix)
    try:
        yield invalidator
    finally:
        await invalidator.close()


def driven(
    settings: Settings, features: FeatureProcessor, lander: ParquetLander
) -> list[RecordProcessor]:
    """The processors a runtime drives: the features, then the lander unless a Firehose delivery
    stream writes the lake (``settings.lander`` off)."""
    return [features, lander] if settings.lander else [features]


def dead_letter_of(settings: Settings, s3: Any) -> DeadLetterSink:
    """The dead-letter sink under the settings' bucket and prefix."""
    return DeadLetterSink(s3, bucket=settings.bucket, prefix=settings.dead_letter_prefix)
