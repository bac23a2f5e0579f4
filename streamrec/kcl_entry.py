"""The KCL daemon's child process: ``python -m streamrec.kcl_entry`` (one per shard).

The MultiLangDaemon starts it with its own environment, which ``streamrec consume --runtime kcl``
filled with the settings (``STREAMREC_*``, ``infra.kcl.child_environment``). It builds the
processors on an event loop of its own and hands stdin and stdout to ``amazon_kclpy``: stdout
carries the protocol, so logs go to stderr (the daemon copies them into its own log).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import AsyncExitStack

from amazon_kclpy.kcl import KCLProcess

from consumers.kcl import KclShardProcessor
from infra.settings import Settings
from streamrec.wiring import shard_processors


def main() -> None:
    """Build the processors from the environment's settings and serve the daemon until it closes
    stdin (the shard's lease ended) or the adapter exits (a batch failed for good)."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    # Ctrl-C reaches the whole process group; the daemon decides when a shard stops (it closes
    # stdin after shutdown_requested), so a child must not die mid-batch on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings()
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
