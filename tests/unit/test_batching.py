"""Reads sent together: a lone key at once, keys asked meanwhile in the next read, limits kept."""

from __future__ import annotations

import asyncio

import pytest

from models.batching import Batcher


class Source:
    """Values ``key * 10``; every load is held until ``release`` (one at a time, in order)."""

    def __init__(self) -> None:
        self.loads: list[list[int]] = []
        self.gates: list[asyncio.Event] = []
        self.fail: Exception | None = None

    async def load(self, keys: list[int]) -> list[int | None]:
        self.loads.append(keys)
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail is not None:
            raise self.fail
        return [k * 10 if k >= 0 else None for k in keys]

    def release(self) -> None:
        next(g for g in self.gates if not g.is_set()).set()


async def until(condition, what: str) -> None:
    """Let the loop run until ``condition()`` (a bounded number of turns, no clock)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)  # one loop turn
    raise AssertionError(f"never: {what}")


async def test_a_lone_key_is_read_at_once_and_the_others_wait_for_the_next_read() -> None:
    source = Source()
    batcher: Batcher[int, int] = Batcher(source.load, max_in_flight=1)
    first = asyncio.create_task(batcher.get(1))
    await until(lambda: source.loads == [[1]], "the first read out")
    later = [asyncio.create_task(batcher.get_many([k, -1])) for k in (2, 3, 2)]
    await until(lambda: len(batcher._waiting) == 3, "the others queued")
    assert source.loads == [[1]]  # one read out at most
    source.release()
    assert await first == 10
    await until(lambda: len(source.loads) == 2, "the second read out")
    assert source.loads[1] == [2, -1, 3]  # every key asked meanwhile, once
    source.release()
    assert [await t for t in later] == [[20, None], [30, None], [20, None]]
    assert (batcher.reads, batcher.keys_read) == (2, 4)


async def test_a_key_asked_while_it_is_being_read_is_read_again_after() -> None:
    source = Source()
    batcher: Batcher[int, int] = Batcher(source.load, max_in_flight=2)
    first = asyncio.create_task(batcher.get(5))
    await until(lambda: len(source.loads) == 1, "the first read out")
    second = asyncio.create_task(batcher.get(5))  # must see what is there after it asked
    await until(lambda: len(source.loads) == 2, "a second read out (two may be)")
    assert source.loads == [[5], [5]]
    source.release()
    source.release()
    assert (await first, await second) == (50, 50)


async def test_batches_are_at_most_max_batch_keys() -> None:
    source = Source()
    batcher: Batcher[int, int] = Batcher(source.load, max_batch=2, max_in_flight=1)
    task = asyncio.create_task(batcher.get_many([1, 2, 3, 4, 5]))
    for expected in ([1, 2], [3, 4], [5]):
        await until(lambda e=expected: source.loads[-1:] == [e], f"read {expected}")
        source.release()
    assert await task == [10, 20, 30, 40, 50]


async def test_a_waiter_giving_up_does_not_cancel_the_read_of_the_others() -> None:
    source = Source()
    batcher: Batcher[int, int] = Batcher(source.load, max_in_flight=1)
    blocker = asyncio.create_task(batcher.get(0))
    await until(lambda: len(source.loads) == 1, "a read out")
    impatient = asyncio.create_task(batcher.get(7))
    patient = asyncio.create_task(batcher.get(7))
    await until(lambda: 7 in batcher._waiting, "both queued")
    impatient.cancel()
    source.release()
    await until(lambda: len(source.loads) == 2, "the next read out")
    source.release()
    assert (await blocker, await patient) == (0, 70)
    assert impatient.cancelled()


async def test_a_failed_read_fails_its_waiters_and_the_next_read_goes_on() -> None:
    source = Source()
    batcher: Batcher[int, int] = Batcher(source.load, max_in_flight=1)
    source.fail = RuntimeError("throttled")
    failing = [asyncio.create_task(batcher.get(k)) for k in (1, 2)]
    await until(lambda: len(source.loads) == 1, "the first read out")
    source.release()
    with pytest.raises(RuntimeError, match="throttled"):
        await failing[0]
    source.fail = None
    await until(lambda: len(source.loads) == 2, "the queued key read")
    source.release()
    assert await failing[1] == 20
    with pytest.raises(ValueError, match="max_in_flight must be at least 1"):
        Batcher(source.load, max_in_flight=0)
