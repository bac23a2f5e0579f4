"""The embedded runner on moto: a failing processor stops at the last checkpoint, skips nothing."""

from __future__ import annotations

import pytest

from consumers.checkpoints import DynamoCheckpointer
from consumers.dead_letter import DeadLetterSink
from consumers.processor import Batch
from consumers.runner import EmbeddedRunner
from infra.clients import client
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import pipeline


class Exploding:
    """A processor that fails on every batch, as a bug or an outage would."""

    async def initialize(self, shard_id: str) -> None: ...

    async def process_records(self, batch: Batch) -> None:
        raise RuntimeError(f"processor failed on {batch.shard_id}")

    async def shard_ended(self, shard_id: str) -> None: ...

    async def shutdown_requested(self, shard_id: str) -> None: ...


async def test_a_failing_processor_stops_the_runner_without_checkpointing(
    applied: Settings,
) -> None:
    events = synthetic_events(300, users=20, seed=2)
    with EventProducer(client("kinesis", applied), applied.stream_name) as producer:
        producer.put_many(events)

    async with pipeline(applied) as p:
        checkpointer = DynamoCheckpointer(
            p.clients.dynamodb, applied.checkpoints_table, applied.app_name
        )
        runner = EmbeddedRunner(
            p.clients.kinesis,
            applied.stream_name,
            checkpointer,
            [p.features, p.lander, Exploding()],
            DeadLetterSink(p.clients.s3, bucket=applied.bucket, prefix=applied.dead_letter_prefix),
        )
        with pytest.raises(RuntimeError, match="processor failed on shardId-"):
            await runner.run(until_caught_up=True)
        checkpoints = [await checkpointer.get(s) for s in runner.stats.shards]
        assert checkpoints == [None] * len(checkpoints)

    async with pipeline(applied) as p:  # restarted without the bug: nothing was skipped
        await p.runner.run(until_caught_up=True)
        assert p.runner.stats.events == len(events)
        assert len(await p.offline.read_events()) == len(events)
