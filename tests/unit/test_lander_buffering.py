"""The lander's buffer (with a recording stand-in of the offline store and a manual clock)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pytest

from consumers.lander import ParquetLander
from consumers.processor import Batch
from feature_store.offline import LakeObject, Landed, OfflineStore
from feature_store.positions import Position
from feature_store.transforms import Sequenced
from producers.synthetic import synthetic_events

SHARD = "shardId-000000000000"


class Store:
    """Records each ``write_events`` call; fails the next ``failures`` calls."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.failures = 0

    async def write_events(self, events: Sequence[Sequenced]) -> Landed:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("S3 is down")
        self.writes.append([s.sequence_number for s in events])
        return Landed([LakeObject("k", ("2024-05-01", "10"), len(events))], [])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def batch(first: int, count: int) -> Batch:
    events = synthetic_events(first + count, seed=5)[first:]
    return Batch(SHARD, [Sequenced(e, SHARD, str(first + i + 1)) for i, e in enumerate(events)])


def lander(store: Store, clock: Clock, **limits: Any) -> ParquetLander:
    return ParquetLander(cast(OfflineStore, store), clock=clock, **limits)


async def test_zero_limits_write_every_batch() -> None:
    store = Store()
    landing = lander(store, Clock(), max_bytes=0, max_seconds=10)
    await landing.process_records(batch(0, 3))
    assert store.writes == [["1", "2", "3"]] and landing.held_from(SHARD) is None


async def test_the_buffer_is_written_when_full_or_old_and_held_until_then() -> None:
    store, clock = Store(), Clock()
    size = len(batch(0, 1).events[0].event.to_json())
    landing = lander(store, clock, max_bytes=size * 5, max_seconds=60)
    await landing.process_records(batch(0, 3))
    assert store.writes == [] and landing.held_from(SHARD) == Position(1)
    await landing.process_records(batch(3, 3))  # six events: full
    assert store.writes == [["1", "2", "3", "4", "5", "6"]]
    assert landing.held_from(SHARD) is None and landing.rows_written == 6
    await landing.process_records(batch(6, 1))
    clock.now = 59.9
    await landing.process_records(Batch(SHARD, []))
    assert landing.held_from(SHARD) == Position(7)
    clock.now = 60.0
    await landing.process_records(Batch(SHARD, []))  # an empty answer: old enough now
    assert store.writes[-1] == ["7"]


async def test_stop_and_shard_end_flush_and_a_lost_lease_drops() -> None:
    store = Store()
    landing = lander(store, Clock(), max_bytes=10**9, max_seconds=600)
    for flush in (landing.shutdown_requested, landing.shard_ended):
        await landing.process_records(batch(len(store.writes) * 2, 2))
        await flush(SHARD)
    assert store.writes == [["1", "2"], ["3", "4"]]
    await landing.process_records(batch(4, 2))
    await landing.lease_lost(SHARD)
    await landing.shutdown_requested(SHARD)
    assert len(store.writes) == 2 and landing.held_from(SHARD) is None


async def test_a_redelivery_from_the_checkpoint_is_not_buffered_twice() -> None:
    store = Store()
    landing = lander(store, Clock(), max_bytes=10**9, max_seconds=600)
    await landing.process_records(batch(0, 3))
    await landing.process_records(batch(0, 5))  # a failed batch read again from the checkpoint
    await landing.shutdown_requested(SHARD)
    assert store.writes == [["1", "2", "3", "4", "5"]]


async def test_a_failed_write_keeps_the_buffer_for_the_next_call() -> None:
    store = Store()
    store.failures = 1
    landing = lander(store, Clock(), max_bytes=0, max_seconds=0)
    with pytest.raises(RuntimeError, match="S3 is down"):
        await landing.process_records(batch(0, 2))
    assert landing.held_from(SHARD) == Position(1)
    await landing.process_records(batch(0, 2))  # the runtime's retry
    assert store.writes == [["1", "2"]]
