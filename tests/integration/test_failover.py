"""Two embedded runners of one application share a 4-shard stream; one dies, the other takes
over its shards within the failover time, and every event is applied exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from consumers.features import FeatureProcessor
from consumers.leases import LeaseTable
from consumers.runner import EmbeddedRunner, LeaseOptions
from infra.apply import apply
from infra.clients import client
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import Pipeline, build_runner, pipeline
from tests.polling import eventually

FAILOVER = 2.0
RENEWAL = 0.25
OPTIONS = LeaseOptions(
    failover_time=FAILOVER, lease_renewal_interval=RENEWAL, shard_sync_interval=0.5
)


def produce(settings: Settings, events: list[Event]) -> None:
    with EventProducer(client("kinesis", settings), settings.stream_name) as producer:
        producer.put_many(events, results=False)


def runner(settings: Settings, p: Pipeline, worker: str) -> EmbeddedRunner:
    return build_runner(
        settings,
        p.clients,
        [FeatureProcessor(p.online)],
        worker_id=worker,
        idle_interval=0.0,
        limit=25,  # many batches: the kill lands while there is work in hand
        lease_options=OPTIONS,
    )


async def exact(p: Pipeline, events: list[Event]) -> bool:
    totals = Counter(e.item_id for e in events)
    stored = {f.item_id: f.total for f in await p.online.items(sorted(totals)) if f}
    return stored == dict(totals)


async def test_a_dead_runners_shards_are_taken_over_and_nothing_is_lost(settings: Settings) -> None:
    four = settings.model_copy(update={"stream_shards": 4})
    apply(four)
    events = synthetic_events(600, users=40, items=60, seed=11)
    produce(four, events[:400])
    async with pipeline(four) as p:
        a, b = runner(four, p, "worker-a"), runner(four, p, "worker-b")
        run_a = asyncio.create_task(a.run())
        await eventually(lambda: len(a.stats.held()) == 4, 10, "a holds every shard")
        stop_b = asyncio.Event()
        run_b = asyncio.create_task(b.run(stop=stop_b))
        # b steals one lease a round until each holds its fair share
        await eventually(lambda: len(a.stats.held()) == len(b.stats.held()) == 2, 10, "a 2/2 split")
        assert set(a.stats.held()).isdisjoint(b.stats.held())
        assert a.stats.leases_lost == 2

        run_a.cancel()  # a dies: nothing more is written, its leases are left to expire
        killed = time.monotonic()
        await asyncio.wait([run_a])
        await eventually(lambda: len(b.stats.held()) == 4, 10, "b holds every shard")
        took = time.monotonic() - killed
        await asyncio.to_thread(produce, four, events[400:])  # arrives after the takeover
        # expired only once the counters stood still for the failover time on b's clock
        assert FAILOVER - RENEWAL <= took <= 2 * FAILOVER, took

        await eventually(lambda: exact(p, events), 30, "every event applied once", 0.5)
        for user_id, count in Counter(e.user_id for e in events).items():
            user = await p.online.user(user_id)
            assert user is not None and user.events == count, user_id
        stop_b.set()
        await asyncio.wait_for(run_b, 10)
        leases = LeaseTable(p.clients.dynamodb, four.checkpoints_table, four.app_name, "test")
        assert [le.owner for le in await leases.scan()] == [None] * 4  # released on stop
