"""The embedded runner on moto: a failing processor stops at the last checkpoint, skips nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from consumers.checkpoints import SHARD_END, DynamoCheckpointer
from consumers.leases import LeaseTable
from consumers.processor import Batch
from infra.clients import client
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import build_runner, pipeline


class Exploding:
    """A processor that fails its first ``failures`` batches (forever by default)."""

    def __init__(self, failures: int | None = None) -> None:
        self.failures = failures
        self.calls = 0

    async def initialize(self, shard_id: str) -> None: ...

    async def process_records(self, batch: Batch) -> None:
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise RuntimeError(f"processor failed on {batch.shard_id}")

    async def shard_ended(self, shard_id: str) -> None: ...

    async def shutdown_requested(self, shard_id: str) -> None: ...

    async def lease_lost(self, shard_id: str) -> None: ...


async def test_a_failing_processor_stops_the_runner_without_checkpointing(
    applied: Settings,
) -> None:
    events = synthetic_events(300, users=20, seed=2)
    with EventProducer(client("kinesis", applied), applied.stream_name) as producer:
        producer.put_many(events)

    exploding = Exploding()
    async with pipeline(applied) as p:
        runner = build_runner(
            applied, p.clients, [p.features, p.lander, exploding], max_failures=3, retry_delay=0.01
        )
        checkpointer = DynamoCheckpointer(
            p.clients.dynamodb, applied.checkpoints_table, applied.app_name
        )
        with pytest.raises(RuntimeError, match="processor failed on shardId-"):
            await runner.run(until_caught_up=True)
        checkpoints = [await checkpointer.get(s) for s in runner.stats.shards]
        assert checkpoints == [None] * len(checkpoints)
        assert exploding.calls >= 3  # retried from the checkpoint before giving up
        assert max(s.failures for s in runner.stats.shards.values()) == 3

    async with pipeline(applied) as p:  # restarted without the bug: nothing was skipped
        await p.runner.run(until_caught_up=True)
        assert p.runner.stats.events == len(events)
        assert len(await p.offline.read_events()) == len(events)


async def test_a_batch_that_fails_twice_is_retried_from_the_checkpoint_and_applied_once(
    applied: Settings,
) -> None:
    events = synthetic_events(200, users=10, seed=4)
    with EventProducer(client("kinesis", applied), applied.stream_name) as producer:
        producer.put_many(events)
    flaky = Exploding(failures=2)
    async with pipeline(applied) as p:
        runner = build_runner(applied, p.clients, [flaky, p.features, p.lander], retry_delay=0.01)
        await runner.run(until_caught_up=True)
        assert sum(s.errors for s in runner.stats.shards.values()) == 2
        assert runner.stats.events == len(events)
        totals = Counter(e.item_id for e in events)
        stored = await p.online.items(sorted(totals))
        assert {f.item_id: f.total for f in stored if f} == dict(totals)


async def test_the_leases_of_shards_gone_from_the_stream_are_deleted(applied: Settings) -> None:
    # as after the stream's retention passed a reshard's closed parents: one read to its end,
    # one not; the stream's own shards keep theirs
    gone_ended, gone_unread = "shardId-000000000098", "shardId-000000000099"
    async with pipeline(applied) as p:
        leases = LeaseTable(p.clients.dynamodb, applied.checkpoints_table, applied.app_name, "x")
        checkpoints = DynamoCheckpointer(
            p.clients.dynamodb, applied.checkpoints_table, applied.app_name
        )
        await checkpoints.set(gone_ended, SHARD_END)
        await checkpoints.set(
            gone_unread, "49590338271490256608559692538361571095921575989136588898"
        )
        for shard in (gone_ended, gone_unread):
            await leases.ensure(shard, parents=[])
        await p.runner.run(until_caught_up=True)
        left = {lease.shard_id for lease in await leases.scan()}
    assert left == set(p.runner.stats.shards)
    assert gone_ended not in left and gone_unread not in left
    assert left  # the stream's shards
