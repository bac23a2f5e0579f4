"""Running coroutines together so that none outlives a failure of another."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def gather_or_cancel(coroutines: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of ``coroutines`` run concurrently, in order. When one fails, the others are
    cancelled and awaited before its error is raised (``asyncio.gather`` would leave them
    running); the first error is raised, the others chained to it."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from failed
    return [task.result() for task in tasks]


# how long a cancelled task is given before it is cancelled again
RECANCEL_SECONDS = 0.1


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has finished (its error, if any, stays in it).

    Cancelled again every ``RECANCEL_SECONDS`` while it runs: on Python 3.11 one cancel can be
    lost, as ``asyncio.wait_for`` (which redis-py and others use inside) swallows a cancel that
    lands as its inner wait ends (cpython#86296, fixed in 3.12 by building it on
    ``asyncio.timeout``); the task then goes on, and a single cancel waits for it forever.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=RECANCEL_SECONDS)


async def wait_any(events: Iterable[asyncio.Event], timeout: float) -> None:
    """Wait until one of ``events`` is set, or ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
