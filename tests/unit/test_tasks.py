"""Running and stopping tasks (infra/tasks.py)."""

from __future__ import annotations

import asyncio

from infra.tasks import cancel_and_wait


async def test_a_task_that_lost_the_first_cancel_is_cancelled_again() -> None:
    cancels = 0

    async def stubborn() -> None:  # as a task whose cancel Python 3.11's wait_for swallowed
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels >= 2:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_and_wait(task)
    assert task.cancelled()
    assert cancels == 2


async def test_a_task_that_already_finished_keeps_its_error() -> None:
    async def failing() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(failing())
    await asyncio.wait([task])
    await cancel_and_wait(task)
    assert isinstance(task.exception(), ValueError)
