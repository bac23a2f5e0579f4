"""Wiring: concrete parts built from the settings. The only module that knows them all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from consumers.features import FeatureProcessor
from consumers.lander import ParquetLander
from consumers.leases import LeaseTable
from consumers.processor import RecordProcessor
from consumers.runner import EmbeddedRunner, LeaseOptions
from feature_store.offline import OfflineStore
from feature_store.online import OnlineStore
from infra.clients import async_client, client
from infra.settings import Settings
from models.cache import make_cache
from models.catalog import ItemCatalog
from models.ingest import IngestConfig, ThreadedPublisher
from models.recommender import Recommender
from models.registry import ModelRegistry, ModelVersion
from models.reload import ModelReloader
from models.worker import create_app
from producers.producer import EventProducer
from streamrec.observability import ProcessMetrics
from streamrec.parts import (
    dead_letter_of,
    driven,
    features_of,
    invalidator_of,
    lander_of,
    offline_store_of,
)
from streamrec.pipeline_status import pipeline_status_of

if TYPE_CHECKING:
    from models.serving import ServedModel

log = logging.getLogger(__name__)


@dataclass
class Clients:
    """The async AWS clients of one process."""

    kinesis: Any
    dynamodb: Any
    s3: Any
    glue: Any
    # the leases' own DynamoDB client: feature writes filling the main client's connection pool
    # must not hold back the renewals that keep a runner's leases alive
    leases: Any


@dataclass
class Pipeline:
    """Everything one process runs: the consumer runtime and its processors, and the stores."""

    settings: Settings
    clients: Clients
    online: OnlineStore
    offline: OfflineStore
    features: FeatureProcessor
    lander: ParquetLander  # built always; driven only when ``settings.lander``
    runner: EmbeddedRunner
    processors: list[RecordProcessor]  # what the runtimes drive, in order


@asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    """Open the clients and build the pipeline; the clients close when the block ends."""
    async with AsyncExitStack() as stack:
        clients = Clients(
            *[
                await stack.enter_async_context(async_client(service, settings))
                for service in ("kinesis", "dynamodb", "s3", "glue", "dynamodb")
            ]
        )
        invalidate = await stack.enter_async_context(invalidator_of(settings))
        online = OnlineStore(clients.dynamodb, settings.features_table)
        offline = offline_store_of(settings, clients.s3, clients.glue)
        features = features_of(settings, online, invalidate)
        lander = lander_of(settings, offline)
        processors = driven(settings, features, lander)
        runner = build_runner(settings, clients, processors)
        yield Pipeline(settings, clients, online, offline, features, lander, runner, processors)


def build_runner(
    settings: Settings, clients: Clients, processors: Sequence[RecordProcessor], **options: Any
) -> EmbeddedRunner:
    """The embedded runner of ``settings`` driving ``processors``; ``options`` go to the runner
    (``worker_id`` names its leases' owner, default the settings')."""
    leases = LeaseTable(
        clients.leases,
        settings.checkpoints_table,
        settings.app_name,
        options.pop("worker_id", settings.worker_id),
    )
    lease_options = LeaseOptions(
        failover_time=settings.failover_time,
        lease_renewal_interval=settings.lease_renewal_interval,
        shard_sync_interval=settings.shard_sync_interval,
        watchdog_timeout=settings.watchdog_timeout,
        lag_log_interval=settings.lag_log_interval,
    )
    defaults = {
        "limit": settings.get_records_limit,
        "idle_interval": settings.idle_interval,
        "lease_options": lease_options,
    }
    return EmbeddedRunner(
        clients.kinesis,
        settings.stream_name,
        leases,
        processors,
        dead_letter_of(settings, clients.s3),
        **(defaults | options),
    )


@asynccontextmanager
async def offline_store(settings: Settings) -> AsyncIterator[OfflineStore]:
    """The offline store alone (S3 and Glue clients), closed when the block ends."""
    async with async_client("s3", settings) as s3, async_client("glue", settings) as glue:
        yield offline_store_of(settings, s3, glue)


def _served_model(artifact: bytes) -> ServedModel:
    from models.serving import served_model  # numpy and scipy: only once a model is served

    return served_model(artifact)


@asynccontextmanager
async def recommender_app(
    settings: Settings,
    online: OnlineStore,
    catalog: ItemCatalog | None = None,
    s3: Any = None,
    dynamodb: Any = None,
    metrics: ProcessMetrics | None = None,
) -> AsyncIterator[FastAPI]:
    """The recommender API over ``online``, caching in Redis if the settings name one; genre
    filters and content candidates know the genres of ``catalog``'s items until a content model
    (``settings.content_model``) is loaded: from then on, of the items that model knows.

    With ``s3``, the promoted version of ``settings.serving_model`` in the model registry is
    loaded and its item neighbours served, and a newly promoted one swapped in while serving
    (polled every ``model_poll_seconds``). ``POST /events`` publishes to the settings' stream
    when ``ingest_api_keys`` is set (it answers 503 otherwise). With ``dynamodb``,
    ``GET /pipeline`` (and the dashboard) show the consumers' shards from the checkpoints table.
    ``/metrics`` serves ``metrics``' registry (a new one by default), with the worker's metrics
    and the ingest producer's added to it. The cache, the reloaders and the ingest producer stop
    when the block ends.
    """
    metrics = metrics or ProcessMetrics()
    catalog = catalog or ItemCatalog()
    recommender = Recommender(
        online,
        catalog,
        item_rows_max_age_seconds=settings.item_rows_max_age_seconds,
        item_rows_entries=settings.item_rows_entries,
        reads_in_flight=settings.reads_in_flight,
    )
    stop = asyncio.Event()
    reloaders: dict[str, ModelReloader] = {}
    if s3 is not None:
        registry = ModelRegistry(s3, settings.bucket, settings.models_prefix)

        async def install_batch(version: ModelVersion, artifact: bytes) -> None:
            served = await asyncio.to_thread(_served_model, artifact)
            recommender.use(served.neighbours, version.version)

        async def install_content(version: ModelVersion, artifact: bytes) -> None:
            served = await asyncio.to_thread(_served_model, artifact)
            recommender.use_content(served.neighbours, version.version, served.catalog)

        for name, install in (
            (settings.serving_model, install_batch),
            (settings.content_model, install_content),
        ):
            if name:
                reloaders[name] = ModelReloader(
                    registry, name, install, settings.model_poll_seconds
                )
    reloading = [asyncio.create_task(r.run(stop)) for r in reloaders.values()]
    cache = make_cache(
        settings.redis_url,
        prefix=settings.cache_prefix,
        near_entries=settings.near_cache_entries,
        timeout_seconds=settings.cache_timeout_seconds,
        retry_after_seconds=settings.cache_retry_after_seconds,
    )
    publisher, ingest = None, None
    if settings.ingest_keys:
        producer = EventProducer(client("kinesis", settings), settings.stream_name)
        metrics.producers.add("ingest", producer)
        publisher = ThreadedPublisher(producer)
        ingest = IngestConfig(publisher, settings.ingest_keys)
    try:
        app = create_app(
            recommender,
            cache,
            ttl_seconds=settings.cache_ttl_seconds,
            ingest=ingest,
            store=online,
            deadline_seconds=settings.recommend_deadline_seconds,
            pipeline=None if dynamodb is None else pipeline_status_of(settings, dynamodb),
            metrics=metrics.worker(),
        )
        app.state.reloaders = reloaders  # model name -> its reloader (which version serves)
        yield app
    finally:
        stop.set()
        await asyncio.gather(*reloading)
        await cache.close()
        if publisher is not None:
            failed = await publisher.aclose()
            if failed:
                log.error("ingest producer closed with %d events not written", len(failed))
