"""Injected DynamoDB throttling: the checkpoint never passes an unwritten record, and a rerun
without faults converges to the exact features."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from consumers.checkpoints import DynamoCheckpointer
from consumers.features import FeatureProcessor
from consumers.processor import Batch
from consumers.runner import decode
from feature_store.features import item_key, user_key
from feature_store.online import OnlineStore
from feature_store.positions import Position
from feature_store.testing import FaultPlan, ThrottlingClient, after_calls, at_calls, fraction
from feature_store.transforms import Sequenced
from infra.clients import async_client, client
from infra.errors import ThrottledError
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import build_runner, pipeline
from tests.streams import read_records

EVENTS = 1_000
BATCH = 50  # records per GetRecords call: many batches, so some checkpoint before the fault


def stream_events(settings: Settings) -> list[Sequenced]:
    """Every event of the stream with its shard and position."""
    by_shard = read_records(client("kinesis", settings), settings.stream_name)
    return [s for shard, records in by_shard.items() for s in decode(shard, records)[0]]


@pytest.mark.parametrize(
    ("operations", "plan"),
    [
        (("put_item",), after_calls(300)),
        (("batch_get_item",), after_calls(40)),
        (("put_item", "batch_get_item"), fraction(0.05, seed=7, after=300)),
    ],
    ids=["writes-fail-for-good", "reads-fail-for-good", "random-5%-later"],
)
async def test_the_checkpoint_never_passes_an_unwritten_record(
    per_batch: Settings, operations: tuple[str, ...], plan: FaultPlan
) -> None:
    applied = per_batch  # the lander must not hold the checkpoints back: they are what is checked
    events = synthetic_events(EVENTS, users=40, items=100, seed=31)
    with EventProducer(client("kinesis", applied), applied.stream_name) as producer:
        producer.put_many(events)
    placed = stream_events(applied)
    assert len(placed) == EVENTS

    async with pipeline(applied) as p:
        dynamodb = p.clients.dynamodb
        faulty = ThrottlingClient(dynamodb, fail=plan, operations=operations)
        checkpointer = DynamoCheckpointer(dynamodb, applied.checkpoints_table, applied.app_name)
        runner = build_runner(
            applied,
            p.clients,
            [FeatureProcessor(OnlineStore(faulty, applied.features_table)), p.lander],
            limit=BATCH,
            max_failures=1,  # surface the outage at once: the state it left is what is checked
        )
        with pytest.raises(ThrottledError):
            await asyncio.wait_for(runner.run(until_caught_up=True), 120)
        assert faulty.failed

        checkpoints = {s: await checkpointer.get(s) for s in {s.shard_id for s in placed}}
        assert any(checkpoints.values()), "no batch was checkpointed before the fault"
        covered = [
            s
            for s in placed
            if checkpoints[s.shard_id] is not None
            and s.position <= Position.parse(checkpoints[s.shard_id])
        ]
        keys = [k for s in covered for k in (user_key(s.event.user_id), item_key(s.event.item_id))]
        rows = dict(zip(keys, await p.online.read_rows(keys), strict=True))
        for s in covered:  # every checkpointed event took effect on its user and its item
            for key in (user_key(s.event.user_id), item_key(s.event.item_id)):
                row = rows[key]
                assert row is not None and row.mark(s.shard_id) >= s.position, (key, s.mark)

    async with pipeline(applied) as p:  # the outage is over: resume from the checkpoints
        await asyncio.wait_for(p.runner.run(until_caught_up=True), 120)
        items = sorted({e.item_id for e in events})
        stored = {f.item_id: f.total for f in await p.online.items(items) if f}
        assert stored == dict(Counter(e.item_id for e in events))
        for user_id, count in Counter(e.user_id for e in events).items():
            user = await p.online.user(user_id)
            assert user is not None and user.events == count


async def test_a_throttled_batch_leaves_no_write_running(applied: Settings) -> None:
    """When one write fails, ``process_records`` raises only after its other writes stopped."""
    events = [
        Sequenced(e, "shardId-000000000000", str(100 + i))
        for i, e in enumerate(synthetic_events(200, users=30, items=80, seed=8))
    ]
    async with async_client("dynamodb", applied) as dynamodb:
        faulty = ThrottlingClient(dynamodb, fail=at_calls([5]), operations=["put_item"])
        processor = FeatureProcessor(OnlineStore(faulty, applied.features_table))
        with pytest.raises(ThrottledError):
            await processor.process_records(Batch("shardId-000000000000", events))
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in others if not t.done()]
        calls = faulty.calls["put_item"]
        await asyncio.sleep(0)  # a write left running would call again once scheduled
        assert faulty.calls["put_item"] == calls

        # redelivery of the same batch (the runtime's retry) converges to the exact totals
        await processor.process_records(Batch("shardId-000000000000", events))
        store = OnlineStore(dynamodb, applied.features_table)
        ids = sorted({s.event.item_id for s in events})
        stored = {f.item_id: f.total for f in await store.items(ids) if f}
        assert stored == dict(Counter(s.event.item_id for s in events))
