"""Resharding on kinesis-mock while events flow: a shard is split, two are merged, and the
runner applies every event once, each user's in order (children wait for their parents)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, defaultdict
from typing import Any

from consumers.checkpoints import SHARD_END, DynamoCheckpointer
from consumers.processor import Batch
from consumers.runner import LeaseOptions
from infra.clients import client
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import build_runner, pipeline
from tests.polling import eventually
from tests.streams import wait_active

EVENTS = 450
OPTIONS = LeaseOptions(failover_time=2.0, lease_renewal_interval=0.25, shard_sync_interval=0.5)


class Recording:
    """A processor that keeps, per user, the event ids in the order they were applied."""

    def __init__(self) -> None:
        self.by_user: dict[str, list[str]] = defaultdict(list)
        self.count = 0

    async def initialize(self, shard_id: str) -> None: ...

    async def process_records(self, batch: Batch) -> None:
        for s in batch.events:
            self.by_user[s.event.user_id].append(s.event.event_id)
        self.count += len(batch.events)

    async def shard_ended(self, shard_id: str) -> None: ...

    async def shutdown_requested(self, shard_id: str) -> None: ...

    async def lease_lost(self, shard_id: str) -> None: ...


def reshard_while_producing(
    settings: Settings, events: list[Event], split: threading.Event
) -> list[str]:
    """Put a third of the events before each reshard and after the last, setting ``split``
    once the split's children took their third; the closed parents."""
    kinesis = client("kinesis", settings)
    stream = settings.stream_name
    third = len(events) // 3
    with EventProducer(kinesis, stream) as producer:
        producer.put_many(events[:third], results=False)  # in flight during the split
        first, second = _open_shards(kinesis, stream)
        low, high = (int(first["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
        kinesis.split_shard(
            StreamName=stream,
            ShardToSplit=first["ShardId"],
            NewStartingHashKey=str((low + high) // 2),
        )
        wait_active(kinesis, stream)
        producer.put_many(events[third : 2 * third], results=False)
        assert not producer.flush().failed
        split.set()
        # merge the split's upper child with the neighbour above it: a child of two parents
        upper = max(
            (
                s
                for s in _open_shards(kinesis, stream)
                if s.get("ParentShardId") == first["ShardId"]
            ),
            key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]),
        )
        kinesis.merge_shards(
            StreamName=stream, ShardToMerge=upper["ShardId"], AdjacentShardToMerge=second["ShardId"]
        )
        wait_active(kinesis, stream)
        producer.put_many(events[2 * third :], results=False)
        assert not producer.flush().failed
    return [first["ShardId"], upper["ShardId"], second["ShardId"]]


def _open_shards(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    open_ = [s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    return sorted(open_, key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))


async def test_split_and_merge_apply_every_event_once_in_each_users_order(
    faithful: Settings,
) -> None:
    events = synthetic_events(EVENTS, users=30, items=60, seed=5)
    recording = Recording()
    async with pipeline(faithful) as p:
        runner = build_runner(
            faithful,
            p.clients,
            [p.features, recording],
            idle_interval=0.0,
            limit=25,
            lease_options=OPTIONS,
        )
        split = threading.Event()
        flow = asyncio.create_task(
            asyncio.to_thread(reshard_while_producing, faithful, events, split)
        )
        # start behind: the parent still holds a backlog while its children fill, so a child
        # read too early would apply a user's later events first
        assert await asyncio.to_thread(split.wait, 30)
        stop = asyncio.Event()
        run = asyncio.create_task(runner.run(stop=stop))
        closed = await flow  # the merge and the last third happen while the runner reads
        await eventually(lambda: recording.count >= EVENTS or run.done(), 60, "all events read")
        stop.set()
        await asyncio.wait_for(run, 10)

        expected: dict[str, list[str]] = defaultdict(list)
        for e in events:
            expected[e.user_id].append(e.event_id)
        assert dict(recording.by_user) == dict(expected)  # once each, in each user's order
        totals = Counter(e.item_id for e in events)
        stored = {f.item_id: f.total for f in await p.online.items(sorted(totals)) if f}
        assert stored == dict(totals)
        checkpoints = DynamoCheckpointer(
            p.clients.dynamodb, faithful.checkpoints_table, faithful.app_name
        )
        assert [await checkpoints.get(s) for s in closed] == [SHARD_END] * 3
        assert len(runner.stats.shards) == 5  # two originals, two children, one merged
