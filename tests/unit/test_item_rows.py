"""The worker's copy of item rows: kept for a while, one read per item, reads outlive waiters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from feature_store.features import ItemFeatures
from models.item_rows import ItemRows


class Store:
    """Item rows by id, counting the reads; ``gate`` (when set) holds every read until opened."""

    def __init__(self, *known: str) -> None:
        self.rows = {i: ItemFeatures(i, covis={"x": 1}) for i in known}
        self.calls: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def read(self, item_ids: Sequence[str]) -> list[ItemFeatures | None]:
        self.calls.append(list(item_ids))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [self.rows.get(i) for i in item_ids]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_row_is_read_once_while_young_and_again_once_old() -> None:
    store, clock = Store("a", "b"), Clock()
    rows = ItemRows(store.read, max_age_seconds=5, clock=clock)
    first = await rows.get(["a", "b", "a"])
    assert [r.item_id if r else None for r in first] == ["a", "b", "a"]
    clock.now = 3.7  # kept at least three quarters of the max age
    store.rows["a"] = ItemFeatures("a", covis={"y": 2})
    assert (await rows.get(["a"]))[0] == first[0]  # the copy: not read again
    assert store.calls == [["a", "b"]]
    clock.now = 5.01  # and never more than the max age
    assert (await rows.get(["a"]))[0] == store.rows["a"]  # old: read again
    assert store.calls == [["a", "b"], ["a"]] and rows.reads == 3


async def test_unknown_items_are_not_kept() -> None:
    store = Store("a")
    rows = ItemRows(store.read, max_age_seconds=5, clock=Clock())
    assert await rows.get(["new"]) == [None]
    store.rows["new"] = ItemFeatures("new")
    assert await rows.get(["new"]) == [store.rows["new"]]  # its first event shows at once
    assert store.calls == [["new"], ["new"]]


async def test_concurrent_requests_share_one_read_of_an_item() -> None:
    store = Store("a", "b", "c")
    store.gate = asyncio.Event()
    rows = ItemRows(store.read, max_age_seconds=5)
    first = asyncio.create_task(rows.get(["a", "b"]))
    await asyncio.sleep(0)  # the first read has started
    second = asyncio.create_task(rows.get(["b", "c"]))
    await asyncio.sleep(0)
    store.gate.set()
    assert [r.item_id for r in await first] == ["a", "b"]
    assert [r.item_id for r in await second] == ["b", "c"]
    assert store.calls == [["a", "b"], ["c"]]  # "b" read once, by the first


async def test_a_request_giving_up_leaves_the_read_to_the_others_and_the_copy() -> None:
    store = Store("a")
    store.gate = asyncio.Event()
    rows = ItemRows(store.read, max_age_seconds=5)
    impatient = asyncio.create_task(asyncio.wait_for(rows.get(["a"]), timeout=0.01))
    waiting = asyncio.create_task(rows.get(["a"]))
    with pytest.raises(TimeoutError):
        await impatient
    store.gate.set()
    assert (await waiting)[0] == store.rows["a"]
    assert await rows.get(["a"]) == [store.rows["a"]] and len(store.calls) == 1


async def test_a_failed_read_reaches_every_waiter_and_keeps_nothing() -> None:
    store = Store("a")
    store.gate, store.fail = asyncio.Event(), RuntimeError("throttled")
    rows = ItemRows(store.read, max_age_seconds=5)
    both = [asyncio.create_task(rows.get(["a"])) for _ in range(2)]
    await asyncio.sleep(0)
    store.gate.set()
    for task in both:
        with pytest.raises(RuntimeError, match="throttled"):
            await task
    store.fail = None
    assert await rows.get(["a"]) == [store.rows["a"]]
    assert len(store.calls) == 2 and len(rows) == 1


async def test_max_age_zero_reads_every_time_and_bad_bounds_are_named() -> None:
    store = Store("a")
    rows = ItemRows(store.read)
    await rows.get(["a"])
    await rows.get(["a"])
    assert store.calls == [["a"], ["a"]] and len(rows) == 0
    with pytest.raises(ValueError, match="max_age_seconds must be >= 0"):
        ItemRows(store.read, max_age_seconds=-1)
    with pytest.raises(ValueError, match="max_entries >= 1"):
        ItemRows(store.read, max_entries=0)


async def test_at_most_max_entries_are_kept() -> None:
    store = Store(*"abcd")
    rows = ItemRows(store.read, max_age_seconds=5, max_entries=2, clock=Clock())
    await rows.get(list("abcd"))
    assert len(rows) == 2
    await rows.get(["c", "d"])  # the two kept: the last read
    assert store.calls == [list("abcd")]


async def test_rows_read_together_expire_spread_over_the_last_quarter_of_the_max_age() -> None:
    store, clock = Store(*(str(n) for n in range(100))), Clock()
    rows = ItemRows(store.read, max_age_seconds=4, clock=clock)
    await rows.get([str(n) for n in range(100)])
    clock.now = 3.5  # seven eighths: some copies have expired, not all
    await rows.get([str(n) for n in range(100)])
    again = len(store.calls[1])
    assert 10 < again < 90, again
