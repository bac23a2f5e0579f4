"""``ManualClock``: a ``producers.clock.Clock`` whose time moves only when told or waited on.

A producer that waits on it for a timeout (a linger, a backoff, a rate limit, a put blocked on a
full buffer) does not wait: the clock jumps by the timeout and the producer goes on. Waits
without a timeout (for new events or outcomes) are real waits on the condition or coroutine.
``waits`` keeps the length of every jump, so a test can check the backoff a producer chose.

So a ``put`` that finds the buffer full with a finite ``put_timeout`` times out at once (the
test of ``Backpressure``); to let the sender make room instead, use ``put_timeout=None``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any


class ManualClock:
    """Test time, starting at ``start`` seconds."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def now(self) -> float:
        """The current test time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """A sleep that only moves time (for injected ``sleep`` functions)."""
        self.advance(seconds)

    async def sleep_async(self, seconds: float) -> None:
        """An async sleep that only moves time, then lets other tasks run."""
        self.advance(seconds)
        await asyncio.sleep(0)

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Jump ``timeout`` and let other threads take the lock; no timeout: a real wait."""
        if timeout is None:
            condition.wait()
            return
        self._jump(timeout)
        condition.wait(0)

    async def wait_async(self, waiter: Coroutine[Any, Any, Any], timeout: float | None) -> None:
        """Jump ``timeout`` (``waiter`` is dropped) and yield; no timeout: await ``waiter``."""
        if timeout is None:
            await waiter
            return
        waiter.close()
        self._jump(timeout)
        await asyncio.sleep(0)

    def _jump(self, seconds: float) -> None:
        if seconds > 0:
            self.waits.append(seconds)
            self.advance(seconds)
