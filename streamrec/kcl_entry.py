"""The KCL daemon's child process: ``python -m streamrec.kcl_entry`` (one per shard).

The MultiLangDaemon starts it with its own environment, which ``streamrec consume --runtime kcl``
filled with the settings (``STREAMREC_*``, ``infra.kcl.child_environment``). It builds the
processors on an event loop of its own and hands stdin and stdout to ``amazon_kclpy``: stdout
carries the protocol, so logs go to stderr (the daemon copies each line into its own log, at
ERROR whatever our level: hence WARNING here).

The processors are built here rather than with ``streamrec.wiring``, whose imports (the API,
the cache) would add about a second to every shard's start.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from amazon_kclpy.kcl import KCLProcess

from consumers.dead_letter import DeadLetterSink
from consumers.kcl import KclShardProcessor
from consumers.processor import RecordProcessor
from feature_store.online import OnlineStore
from infra.clients import async_client
from infra.logs import configure_logging
from infra.settings import Settings
from streamrec.parts import (
    dead_letter_of,
    driven,
    features_of,
    invalidator_of,
    lander_of,
    offline_store_of,
)


@asynccontextmanager
async def shard_processors(
    settings: Settings,
) -> AsyncIterator[tuple[list[RecordProcessor], DeadLetterSink]]:
    """The processors (features, then the Parquet lander, as in the embedded pipeline) and the
    dead-letter sink; their clients close when the block ends."""
    async with AsyncExitStack() as stack:
        dynamodb, s3, glue = [
            await stack.enter_async_context(async_client(service, settings))
            for service in ("dynamodb", "s3", "glue")
        ]
        offline = offline_store_of(settings, s3, glue)
        invalidate = await stack.enter_async_context(invalidator_of(settings))
        online = OnlineStore(dynamodb, settings.features_table)
        features = features_of(settings, online, invalidate)
        dead_letter = dead_letter_of(settings, s3)
        yield driven(settings, features, lander_of(settings, offline)), dead_letter


def main() -> None:
    """Build the processors from the environment's settings and serve the daemon until it closes
    stdin (the shard's lease ended) or the adapter exits (a batch failed for good)."""
    # Ctrl-C reaches the whole process group; the daemon decides when a shard stops (it closes
    # stdin after shutdown_requested), so a child must not die mid-batch on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)  # stderr: stdout is the protocol
    loop = asyncio.new_event_loop()
    resources = AsyncExitStack()
    try:
        processors, dead_letter = loop.run_until_complete(
            resources.enter_async_context(shard_processors(settings))
        )
        KCLProcess(KclShardProcessor(processors, dead_letter, loop)).run()
    finally:
        loop.run_until_complete(resources.aclose())
        loop.close()


if __name__ == "__main__":
    main()
