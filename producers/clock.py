"""Time for the producer drivers: reading it and waiting for it, injectable.

The core only ever receives ``now``. The drivers also wait: for new events, for room in the
buffer, for a linger, backoff or rate limit to pass. ``SystemClock`` does that on the monotonic
clock with the usual primitives; ``producers.testing.ManualClock`` jumps instead of waiting,
so tests of retries and backpressure neither sleep nor depend on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any, Protocol


class Clock(Protocol):
    """What the producers need of time."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on ``condition`` (held) until notified or ``timeout`` seconds have passed."""
        ...

    async def wait_async(self, waiter: Coroutine[Any, Any, Any], timeout: float | None) -> None:
        """Await ``waiter`` (e.g. ``event.wait()``) for at most ``timeout`` seconds."""
        ...


class SystemClock:
    """The real monotonic clock."""

    def now(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """``condition.wait(timeout)``."""
        condition.wait(timeout)

    async def wait_async(self, waiter: Coroutine[Any, Any, Any], timeout: float | None) -> None:
        """``asyncio.wait_for(waiter, timeout)``; a timeout just returns."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, timeout)
