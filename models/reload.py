"""Serving the promoted model: poll the registry's pointer, load a new version, swap it in.

The swap is one assignment (``Recommender.use``), made after the new version is fully loaded
and converted, so a request in flight finishes on the version it started with and no request
waits for a load. A version that fails to load is logged and counted, and the previous one
keeps serving; it is tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from models.registry import ModelRegistry, ModelVersion

log = logging.getLogger(__name__)

# turns a version and its artifact into what the worker serves, and installs it
Install = Callable[[ModelVersion, bytes], Awaitable[None]]


class ModelReloader:
    """Keeps the worker on the promoted version of one registered model."""

    def __init__(
        self, registry: ModelRegistry, name: str, install: Install, interval: float = 30.0
    ) -> None:
        self._registry = registry
        self._name = name
        self._install = install
        self._interval = interval
        self.version: str | None = None  # the version serving now
        self.loads = 0
        self.failures = 0

    async def check(self) -> bool:
        """Load the promoted version if it is not the one serving; whether one was installed."""
        try:
            current = await self._registry.current(self._name)
            if current is None or current.version == self.version:
                return False
            artifact = await self._registry.artifact(current)
            await self._install(current, artifact)
        except Exception:
            self.failures += 1
            log.warning(
                "loading model %s failed; serving %s", self._name, self.version, exc_info=True
            )
            return False
        self.version = current.version
        self.loads += 1
        log.info("serving model %s version %s", self._name, current.version)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Check now and then every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
