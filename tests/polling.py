"""Waiting in tests: poll a condition under a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

POLL_SECONDS = 0.02


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float,
    what: str,
    interval: float = POLL_SECONDS,
) -> float:
    """Poll ``condition`` every ``interval`` until it holds; the seconds it took. Fails after
    ``timeout``. A condition that reads a store should poll slowly: moto serves few calls/s."""
    started = time.monotonic()
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(interval)  # polling, under the deadline
