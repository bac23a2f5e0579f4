"""The feature processor on moto's DynamoDB: exactly-once effect under redelivery and crashes."""

from __future__ import annotations

from collections import Counter

import pytest

from consumers.features import FeatureProcessor
from consumers.processor import Batch
from feature_store.features import user_key
from feature_store.online import OnlineStore
from feature_store.rows import Row
from feature_store.transforms import Sequenced
from infra.apply import apply
from infra.clients import async_client
from infra.settings import Settings
from producers.synthetic import synthetic_events

SHARD = "shardId-000000000000"


def sequenced(n: int) -> list[Sequenced]:
    return [Sequenced(e, SHARD, str(100 + i)) for i, e in enumerate(synthetic_events(n, seed=3))]


async def item_totals(store: OnlineStore, events: list[Sequenced]) -> dict[str, int]:
    ids = sorted({s.event.item_id for s in events})
    return {i: f.total if f else 0 for i, f in zip(ids, await store.items(ids), strict=True)}


def expected_totals(events: list[Sequenced]) -> dict[str, int]:
    return dict(Counter(s.event.item_id for s in events))


async def test_redelivered_and_rebatched_records_are_counted_once(applied: Settings) -> None:
    events = sequenced(300)
    async with async_client("dynamodb", applied) as dynamodb:
        store = OnlineStore(dynamodb, applied.features_table)
        processor = FeatureProcessor(store)
        await processor.process_records(Batch(SHARD, events[:200]))
        await processor.process_records(Batch(SHARD, events[:200]))  # redelivered whole
        await processor.process_records(Batch(SHARD, events[150:]))  # re-batched overlap
        assert await item_totals(store, events) == expected_totals(events)
        user = await store.user(events[0].event.user_id)
        assert user is not None
        assert user.events == sum(1 for s in events if s.event.user_id == user.user_id)


class CrashAfter(OnlineStore):
    """Fails the process after ``writes`` successful writes: a crash between two writes."""

    def __init__(self, client: object, table: str, writes: int) -> None:
        super().__init__(client, table)
        self.left = writes

    async def write_row(self, row: Row) -> bool:
        if self.left <= 0:
            raise ConnectionError("process died")
        self.left -= 1
        return await super().write_row(row)


async def test_a_crash_between_writes_then_redelivery_does_not_double_count(
    applied: Settings,
) -> None:
    events = sequenced(120)
    users = len({s.event.user_id for s in events})
    async with async_client("dynamodb", applied) as dynamodb:
        crashing = FeatureProcessor(CrashAfter(dynamodb, applied.features_table, users + 20))
        with pytest.raises(ConnectionError):
            await crashing.process_records(Batch(SHARD, events))
        store = OnlineStore(dynamodb, applied.features_table)
        await FeatureProcessor(store).process_records(Batch(SHARD, events))
        assert await item_totals(store, events) == expected_totals(events)
        popular = dict((await store.popular()).items)
        assert popular == {k: v for k, v in expected_totals(events).items() if k in popular}


async def test_two_shards_writing_the_same_items_both_count(applied: Settings) -> None:
    events = sequenced(200)
    other = [Sequenced(s.event, "shardId-000000000001", s.sequence_number) for s in events]
    async with async_client("dynamodb", applied) as dynamodb:
        store = OnlineStore(dynamodb, applied.features_table)
        processor = FeatureProcessor(store)
        await processor.process_records(Batch(SHARD, events))
        await processor.process_records(Batch("shardId-000000000001", other))
        doubled = {k: 2 * v for k, v in expected_totals(events).items()}
        assert await item_totals(store, events) == doubled


async def test_user_records_of_aggregated_records_are_counted_once(applied: Settings) -> None:
    # seven events per Kinesis record, as a KPL-aggregating producer would write them
    events = [
        Sequenced(e, SHARD, str(100 + i // 7), sub_sequence=i % 7)
        for i, e in enumerate(synthetic_events(150, seed=4))
    ]
    async with async_client("dynamodb", applied) as dynamodb:
        store = OnlineStore(dynamodb, applied.features_table)
        processor = FeatureProcessor(store)
        await processor.process_records(Batch(SHARD, events[:100]))
        await processor.process_records(Batch(SHARD, events[:100]))  # redelivered whole
        await processor.process_records(Batch(SHARD, events[52:]))  # overlap inside a record
        assert await item_totals(store, events) == expected_totals(events)
        user_id = events[-1].event.user_id
        user = await store.user(user_id)
        assert user is not None
        assert user.events == sum(1 for s in events if s.event.user_id == user_id)
        (row,) = await store.read_rows([user_key(user_id)])
        assert row is not None and row.marks[SHARD] == events[-1].mark == "121:2"


class Recording(OnlineStore):
    """Remembers the key of every row written, in order."""

    def __init__(self, client: object, table: str) -> None:
        super().__init__(client, table)
        self.keys: list[str] = []

    async def write_row(self, row: Row) -> bool:
        self.keys.append(row.key)
        return await super().write_row(row)


async def test_a_crash_after_some_user_rows_took_the_batch_keeps_covisits_exact(
    applied: Settings,
) -> None:
    """Replayed co-visitation pairs come from the user's history before the batch, which a user
    row that already took the batch no longer holds (its recent list is deduplicated)."""
    events = sequenced(200)
    first, second = Batch(SHARD, events[:100]), Batch(SHARD, events[100:])
    crashed = applied.model_copy(update={"features_table": applied.features_table + "-crashed"})
    apply(crashed)
    async with async_client("dynamodb", applied) as dynamodb:
        clean = Recording(dynamodb, applied.features_table)
        await FeatureProcessor(clean).process_records(first)
        clean.keys.clear()
        await FeatureProcessor(clean).process_records(second)
        users_from = next(i for i, k in enumerate(clean.keys) if k.startswith("user#"))

        store = OnlineStore(dynamodb, crashed.features_table)
        await FeatureProcessor(store).process_records(first)
        crashing = CrashAfter(dynamodb, crashed.features_table, users_from + 3)
        with pytest.raises(ConnectionError):
            await FeatureProcessor(crashing).process_records(second)
        await FeatureProcessor(store).process_records(second)  # redelivered after the crash

        ids = sorted({s.event.item_id for s in events})
        assert await store.items(ids) == await clean.items(ids)
