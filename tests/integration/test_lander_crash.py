"""A lander crash between the Parquet write and the checkpoint: the batch is redelivered after
the restart and the lake holds every event exactly once (counted with DuckDB, as a reader would)."""

from __future__ import annotations

import asyncio

import pytest

from consumers.checkpoints import DynamoCheckpointer
from consumers.lander import ParquetLander
from consumers.processor import Batch
from consumers.runner import decode
from feature_store.positions import Position
from feature_store.sql import connect, lake_dataset, run_query
from infra.clients import client, s3_filesystem
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import build_runner, pipeline
from tests.polling import eventually
from tests.streams import read_records

EVENTS = 400
BATCH = 40  # records per GetRecords call: the crash comes after some batches were checkpointed


class CrashAfterLanding:
    """Placed after the lander: once the lander has written objects, the next batch it sees
    "crashes" the process (it hangs until the test cancels the runner), so the batch in hand is
    in S3 but never checkpointed."""

    def __init__(self, lander: ParquetLander) -> None:
        self._lander = lander
        self.crashed = asyncio.Event()
        self.shard_id = ""

    async def initialize(self, shard_id: str) -> None: ...

    async def process_records(self, batch: Batch) -> None:
        if self._lander.objects_written and not self.crashed.is_set() and batch.events:
            self.shard_id = batch.shard_id
            self.crashed.set()
            await asyncio.Future()  # the process is dead: nothing after this runs

    async def shard_ended(self, shard_id: str) -> None: ...

    async def shutdown_requested(self, shard_id: str) -> None: ...

    async def lease_lost(self, shard_id: str) -> None: ...


def lake_counts(settings: Settings) -> tuple[int, int]:
    """Rows in the lake's Glue table and distinct event ids, by DuckDB."""
    database, table = settings.glue_database, settings.glue_events_table
    dataset = lake_dataset(client("glue", settings), s3_filesystem(settings), database, table)
    result = run_query(
        connect(dataset, database, table), "select count(*), count(distinct event_id) from events"
    )
    ((rows, distinct),) = result.rows
    return rows, distinct


async def crash_then_restart(settings: Settings) -> tuple[int, int]:
    """Run the pipeline until the crash, kill it, restart it to the tip; the lake's counts."""
    events = synthetic_events(EVENTS, users=30, items=60, seed=11)
    with EventProducer(client("kinesis", settings), settings.stream_name) as producer:
        producer.put_many(events)

    async with pipeline(settings) as p:
        crash = CrashAfterLanding(p.lander)
        runner = build_runner(settings, p.clients, [p.features, p.lander, crash], limit=BATCH)
        task = asyncio.create_task(runner.run(until_caught_up=True))
        await eventually(crash.crashed.is_set, 60, "the crash after a landed batch")
        task.cancel()  # a crash: no checkpoint, no release; the same worker id resumes its leases
        await asyncio.gather(task, return_exceptions=True)
        checkpointer = DynamoCheckpointer(
            p.clients.dynamodb, settings.checkpoints_table, settings.app_name
        )
        checkpoints = {s: await checkpointer.get(s) for s in runner.stats.shards}
        checkpointed = len(covered(settings, checkpoints))
        landed_before, _ = await asyncio.to_thread(lake_counts, settings)
        # the batch in hand reached S3 but not its checkpoint: the restart redelivers it
        assert landed_before > checkpointed

    async with pipeline(settings) as p:
        await asyncio.wait_for(p.runner.run(until_caught_up=True), 120)
        assert p.runner.stats.events == EVENTS - checkpointed  # resumed at the checkpoints
    return await asyncio.to_thread(lake_counts, settings)


def covered(settings: Settings, checkpoints: dict[str, str | None]) -> list[object]:
    """The events of the stream at or before their shard's checkpoint."""
    by_shard = read_records(client("kinesis", settings), settings.stream_name)
    return [
        s
        for shard, records in by_shard.items()
        for s in decode(shard, records)[0]
        if (mark := checkpoints.get(shard)) is not None and s.position <= Position.parse(mark)
    ]


@pytest.mark.parametrize(
    "buffer_bytes",
    [0, 15_000],
    ids=["flush-per-batch", "buffered-across-batches"],
)
async def test_a_crash_before_the_checkpoint_leaves_no_duplicate_rows(
    applied: Settings, buffer_bytes: int
) -> None:
    # 15 kB of event JSON: about 100 events, so a buffer fills across three 40-record batches
    settings = applied.model_copy(
        update={"lake_buffer_bytes": buffer_bytes, "lake_buffer_seconds": 600.0}
    )
    assert await crash_then_restart(settings) == (EVENTS, EVENTS)
