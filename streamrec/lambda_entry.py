"""The Lambda function's entry point: ``streamrec.lambda_entry.handler``.

Settings come from the function's environment (``STREAMREC_*``), read once on the cold start,
which also opens the clients; they stay open for the life of the execution environment.
See ``consumers.lambda_handler`` for the event source mapping it expects.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from consumers.lambda_handler import KinesisBatchHandler, make_handler
from infra.settings import Settings
from streamrec.parts import dead_letter_of
from streamrec.wiring import pipeline

_resources = AsyncExitStack()  # never closed: the execution environment's lifetime is its own


async def build(settings: Settings | None = None) -> KinesisBatchHandler:
    """The feature processor and the Parquet lander, wired from ``settings`` (or ``Settings()``)."""
    settings = settings or Settings()
    p = await _resources.enter_async_context(pipeline(settings))
    return KinesisBatchHandler(p.processors, dead_letter_of(settings, p.clients.s3))


handler = make_handler(build)
