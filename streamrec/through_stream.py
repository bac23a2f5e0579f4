"""Features computed the way the system computes them: events through Kinesis and the processors.

Used by ``streamrec evaluate`` for the streaming recommender: the training events are put on a
fresh stream of the embedded stack (moto, in this process; KPL-aggregated, as the demo sends
them) and consumed by the embedded runner and the ``FeatureProcessor`` with the settings'
coalescing. The features are kept in the in-memory store (which passes the DynamoDB store's
contract suite): the stream, leases, checkpoints, decoding and processors are the real ones,
and the run takes seconds instead of the many minutes moto's DynamoDB needs for 100,000 events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from consumers.features import FeatureProcessor
from feature_store.memory import InMemoryOnlineStore
from feature_store.online import FeatureStore
from infra.apply import apply
from infra.clients import async_client, client
from infra.local import embedded_stack
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer
from streamrec.wiring import Clients, build_runner

CATCH_UP_TIMEOUT_SECONDS = 600.0


class StreamFeatures:
    """A ``FeatureSource``: each call replays events through a new stream on one embedded stack
    (started on the first call, stopped by ``close``)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._resources = contextlib.ExitStack()
        self._url: str | None = None
        self.replays = 0

    def __call__(self, events: Sequence[Event]) -> FeatureStore:
        if self._url is None:
            self._url = self._resources.enter_context(embedded_stack())
        settings = self._settings.model_copy(
            update={"endpoint_url": self._url, "redis_url": None}
        ).with_unique_names("evaluate")
        apply(settings)
        with EventProducer(
            client("kinesis", settings), settings.stream_name, aggregate=True
        ) as producer:
            producer.put_many(events, results=False)
            failed = producer.flush().failed
        if failed:
            raise RuntimeError(f"{len(failed)} events were not written to the evaluation stream")
        store = InMemoryOnlineStore()
        asyncio.run(_consume(settings, store))
        self.replays += 1
        return store

    def close(self) -> None:
        """Stop the embedded stack."""
        self._resources.close()


async def _consume(settings: Settings, store: InMemoryOnlineStore) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = Clients(
            *[
                await stack.enter_async_context(async_client(service, settings))
                for service in ("kinesis", "dynamodb", "s3", "glue", "dynamodb")
            ]
        )
        processor = FeatureProcessor(
            store,
            max_events=settings.feature_buffer_events,
            max_seconds=settings.feature_buffer_seconds,
        )
        runner = build_runner(settings, clients, [processor])
        await asyncio.wait_for(runner.run(until_caught_up=True), CATCH_UP_TIMEOUT_SECONDS)
