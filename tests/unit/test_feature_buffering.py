"""The feature processor's coalescing across batches (in memory, a fake clock)."""

from __future__ import annotations

import pytest

from consumers.features import FeatureProcessor
from consumers.processor import Batch
from feature_store.features import item_key
from feature_store.memory import InMemoryOnlineStore
from feature_store.positions import Position
from feature_store.transforms import Sequenced
from producers.events import Event

SHARD = "shardId-0"
T = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batch(first: int, n: int, item: str = "a") -> Batch:
    events = [
        Sequenced(
            Event(
                event_id=f"e{i}",
                user_id=f"u{i % 3}",
                item_id=item,
                event_type="view",
                timestamp=T + i,
            ),
            SHARD,
            str(i),
        )
        for i in range(first, first + n)
    ]
    return Batch(SHARD, events)


async def total(store: InMemoryOnlineStore, item: str = "a") -> int:
    (row,) = await store.read([item_key(item)], ["item.interactions_all"], now_ms=T)
    return 0 if row is None else row["item.interactions_all"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_held_events_are_applied_once_enough_are_held(clock: Clock) -> None:
    store = InMemoryOnlineStore()
    processor = FeatureProcessor(store, max_events=10, max_seconds=5, clock=clock)
    await processor.initialize(SHARD)
    await processor.process_records(batch(1, 6))
    assert processor.held_from(SHARD) == Position(1) and await total(store) == 0
    await processor.process_records(batch(7, 6))  # 12 held: applied together
    assert processor.held_from(SHARD) is None and await total(store) == 12
    assert store.writes == 5  # one item, three users, the global row: once each


async def test_held_events_are_applied_once_the_oldest_is_old_enough(clock: Clock) -> None:
    store = InMemoryOnlineStore()
    processor = FeatureProcessor(store, max_events=1_000, max_seconds=0.25, clock=clock)
    await processor.process_records(batch(1, 3))
    clock.now += 0.3
    await processor.process_records(Batch(SHARD, []))  # an empty answer checks the age
    assert await total(store) == 3 and processor.held_from(SHARD) is None


async def test_redelivered_events_are_held_once_and_lost_leases_drop_them(clock: Clock) -> None:
    store = InMemoryOnlineStore()
    processor = FeatureProcessor(store, max_events=1_000, max_seconds=60, clock=clock)
    await processor.process_records(batch(1, 4))
    await processor.process_records(batch(1, 6))  # the runtime read again from its checkpoint
    await processor.shutdown_requested(SHARD)
    assert await total(store) == 6
    await processor.process_records(batch(7, 2))
    await processor.lease_lost(SHARD)
    assert processor.held_from(SHARD) is None and await total(store) == 6


async def test_without_limits_every_batch_is_applied_at_once() -> None:
    store = InMemoryOnlineStore()
    processor = FeatureProcessor(store)
    await processor.process_records(batch(1, 2))
    assert await total(store) == 2 and processor.held_from(SHARD) is None
    with pytest.raises(ValueError, match="buffer limits"):
        FeatureProcessor(store, max_events=-1)
