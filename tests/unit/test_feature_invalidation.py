"""The feature processor invalidates the written users' cached recommendations, after the write."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest

import consumers.features
from consumers.features import FeatureProcessor
from feature_store.features import user_key
from feature_store.memory import InMemoryOnlineStore
from tests.unit.test_feature_buffering import Clock, T, batch


class Recorder:
    """An invalidator that records, at each call, which of the users' rows were in the store."""

    def __init__(self, store: InMemoryOnlineStore) -> None:
        self.store = store
        self.calls: list[tuple[set[str], set[str]]] = []

    async def __call__(self, user_ids: Collection[str]) -> None:
        rows = await self.store.read_rows([user_key(u) for u in user_ids])
        written = {u for u, row in zip(user_ids, rows, strict=True) if row is not None}
        self.calls.append((set(user_ids), written))


async def test_the_batchs_users_are_invalidated_once_their_rows_are_written() -> None:
    store = InMemoryOnlineStore()
    recorder = Recorder(store)
    processor = FeatureProcessor(store, invalidate=recorder)
    await processor.process_records(batch(0, 6))
    assert recorder.calls == [({"u0", "u1", "u2"}, {"u0", "u1", "u2"})]


async def test_held_events_invalidate_only_when_they_are_applied() -> None:
    store, clock = InMemoryOnlineStore(), Clock()
    recorder = Recorder(store)
    processor = FeatureProcessor(
        store, max_events=10, max_seconds=1.0, clock=clock, invalidate=recorder
    )
    await processor.process_records(batch(0, 4))
    assert recorder.calls == []
    clock.now += 1.0
    await processor.process_records(batch(4, 1))
    assert recorder.calls == [({"u0", "u1", "u2"}, {"u0", "u1", "u2"})]


async def test_a_failing_invalidation_is_counted_and_the_batch_still_succeeds() -> None:
    async def broken(user_ids: Collection[str]) -> None:
        raise ConnectionError("redis is down")

    store = InMemoryOnlineStore()
    processor = FeatureProcessor(store, invalidate=broken)
    await processor.process_records(batch(0, 3))
    assert processor.invalidation_failures == 1
    assert processor.stats.events == 3


async def test_a_hanging_invalidation_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumers.features, "INVALIDATION_TIMEOUT_SECONDS", 0.01)

    async def hangs(user_ids: Collection[str]) -> None:
        await asyncio.Event().wait()

    processor = FeatureProcessor(InMemoryOnlineStore(), invalidate=hangs)
    await asyncio.wait_for(processor.process_records(batch(0, 3)), timeout=5)
    assert processor.invalidation_failures == 1


async def test_freshness_counts_events_by_how_late_their_features_were_written() -> None:
    wall = Clock()
    wall.now = (T + 1_500) / 1000  # batch() stamps event i at T + i ms
    processor = FeatureProcessor(InMemoryOnlineStore(), wall_clock=wall)
    await processor.process_records(batch(0, 3))  # 1.500, 1.499, 1.498 s late: the 2 s slot
    first = processor.freshness("shardId-0")
    assert first == [0, 0, 0, 3, 0, 0, 0]
    assert processor.freshness("shardId-0") == [0] * 7  # counts restart after a read
    wall.now = (T + 60_000) / 1000
    await processor.process_records(batch(3, 1))
    assert processor.freshness("shardId-0")[-1] == 1  # a minute late: the unbounded slot
