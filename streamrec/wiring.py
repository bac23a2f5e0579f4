"""Wiring: concrete parts built from the settings. The only module that knows them all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from consumers.checkpoints import DynamoCheckpointer
from consumers.dead_letter import DeadLetterSink
from consumers.features import FeatureProcessor
from consumers.lander import ParquetLander
from consumers.runner import EmbeddedRunner
from feature_store.offline import OfflineStore
from feature_store.online import OnlineStore
from infra.clients import async_client
from infra.settings import Settings
from models.cache import RecommendationCache, make_cache
from models.recommender import Recommender
from models.worker import create_app


@dataclass
class Clients:
    """The async AWS clients of one process."""

    kinesis: Any
    dynamodb: Any
    s3: Any
    glue: Any


@dataclass
class Pipeline:
    """Everything one process runs: the consumer runtime and its processors, and the stores."""

    settings: Settings
    clients: Clients
    online: OnlineStore
    offline: OfflineStore
    features: FeatureProcessor
    lander: ParquetLander
    runner: EmbeddedRunner


@asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    """Open the clients and build the pipeline; the clients close when the block ends."""
    async with AsyncExitStack() as stack:
        clients = Clients(
            *[
                await stack.enter_async_context(async_client(service, settings))
                for service in ("kinesis", "dynamodb", "s3", "glue")
            ]
        )
        online = OnlineStore(clients.dynamodb, settings.features_table)
        offline = OfflineStore(
            clients.s3,
            clients.glue,
            bucket=settings.bucket,
            prefix=settings.events_prefix,
            database=settings.glue_database,
            table=settings.glue_events_table,
            stream_name=settings.stream_name,
        )
        features, lander = FeatureProcessor(online), ParquetLander(offline)
        runner = EmbeddedRunner(
            clients.kinesis,
            settings.stream_name,
            DynamoCheckpointer(clients.dynamodb, settings.checkpoints_table, settings.app_name),
            [features, lander],
            DeadLetterSink(clients.s3, bucket=settings.bucket, prefix=settings.dead_letter_prefix),
        )
        yield Pipeline(settings, clients, online, offline, features, lander, runner)


def recommender_app(settings: Settings, online: OnlineStore) -> tuple[FastAPI, RecommendationCache]:
    """The recommender API over ``online``, caching in Redis if the settings name one."""
    cache = make_cache(settings.redis_url, prefix=settings.cache_prefix)
    app = create_app(Recommender(online), cache, ttl_seconds=settings.cache_ttl_seconds)
    return app, cache
