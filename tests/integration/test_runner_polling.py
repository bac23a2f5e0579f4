"""The runner's polling on moto, with GetRecords faults injected by a wrapper: at most five
calls a second per shard, back-off after throttling, expired iterators resumed from the
checkpoint, lag reported, and a stuck shard restarted by the watchdog."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from consumers.processor import Batch
from consumers.runner import EmbeddedRunner, LeaseOptions
from infra.apply import apply
from infra.clients import client
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import Pipeline, build_runner, pipeline
from tests.kinesis_faults import EXPIRED, THROTTLED, FailingGetRecords
from tests.streams import read_stream

FAST = LeaseOptions(failover_time=1.0, lease_renewal_interval=0.1, shard_sync_interval=0.5)


class Recording:
    """Keeps every event id applied, and the MillisBehindLatest of every batch; with ``hang``,
    its first batch never returns (a stuck downstream call); with ``slow``, every batch takes
    that many seconds (a slow downstream that is not stuck)."""

    def __init__(self, hang: bool = False, slow: float = 0.0) -> None:
        self.applied: list[str] = []
        self.behind: list[int] = []
        self._hang, self._slow = hang, slow

    async def initialize(self, shard_id: str) -> None: ...

    async def process_records(self, batch: Batch) -> None:
        if self._hang:
            self._hang = False
            await asyncio.Event().wait()
        if self._slow:
            await asyncio.sleep(self._slow)  # the downstream's work, not a wait of the test
        self.applied += [s.event.event_id for s in batch.events]
        self.behind.append(batch.millis_behind_latest)

    async def shard_ended(self, shard_id: str) -> None: ...

    async def shutdown_requested(self, shard_id: str) -> None: ...

    async def lease_lost(self, shard_id: str) -> None: ...


@pytest.fixture
def one_shard(settings: Settings) -> Settings:
    one = settings.model_copy(update={"stream_shards": 1})
    apply(one)
    return one


def produce(settings: Settings, events: list[Event]) -> None:
    with EventProducer(client("kinesis", settings), settings.stream_name) as producer:
        producer.put_many(events, results=False)


def in_stream_order(settings: Settings) -> list[str]:
    """The event ids of the (one-shard) stream in sequence order."""
    return [e.event_id for e in read_stream(client("kinesis", settings), settings.stream_name)]


async def consume(
    settings: Settings,
    p: Pipeline,
    processor: Recording,
    kinesis: FailingGetRecords,
    **options: Any,
) -> EmbeddedRunner:
    """Run a runner reading through ``kinesis`` until it caught up."""
    clients = replace(p.clients, kinesis=kinesis)
    options = {"idle_interval": 0.0, "lease_options": FAST, **options}
    runner = build_runner(settings, clients, [p.features, processor], **options)
    await asyncio.wait_for(runner.run(until_caught_up=True), 60)
    return runner


async def test_throttled_reads_back_off_and_never_exceed_five_calls_a_second(
    one_shard: Settings,
) -> None:
    events = synthetic_events(200, users=10, items=30, seed=21)
    produce(one_shard, events)
    recording = Recording()
    async with pipeline(one_shard) as p:
        kinesis = FailingGetRecords(p.clients.kinesis, {1: THROTTLED, 2: THROTTLED, 3: THROTTLED})
        runner = await consume(one_shard, p, recording, kinesis, limit=40, retry_delay=0.5)
    (progress,) = runner.stats.shards.values()
    assert progress.throttles == 3
    gaps = [b - a for a, b in zip(kinesis.calls, kinesis.calls[1:], strict=False)]
    assert min(gaps) >= 0.19, gaps  # 5 GetRecords/s per shard, throttled calls included
    assert all(gap >= 0.25 for gap in gaps[1:4]), gaps  # back-off after each throttle
    assert sorted(recording.applied) == sorted(e.event_id for e in events)


async def test_an_expired_iterator_resumes_after_the_checkpoint(one_shard: Settings) -> None:
    events = synthetic_events(200, users=10, items=30, seed=22)
    produce(one_shard, events)
    recording = Recording()
    async with pipeline(one_shard) as p:
        kinesis = FailingGetRecords(p.clients.kinesis, {2: EXPIRED})
        runner = await consume(one_shard, p, recording, kinesis, limit=40)
        (progress,) = runner.stats.shards.values()
        assert progress.expired_iterators == 1
        assert recording.applied == in_stream_order(one_shard)  # nothing skipped or repeated
        totals = Counter(e.item_id for e in events)
        assert {f.item_id: f.total for f in await p.online.items(sorted(totals)) if f} == totals


async def test_lag_is_reported_per_shard(
    one_shard: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    events = synthetic_events(200, users=10, items=30, seed=23)
    produce(one_shard, events[:100])  # two producers, two calls: the records' arrival differs
    produce(one_shard, events[100:])
    recording = Recording()
    caplog.set_level(logging.INFO, logger="consumers.runner")
    async with pipeline(one_shard) as p:
        kinesis = FailingGetRecords(p.clients.kinesis, {})
        lagging = replace(FAST, lag_log_interval=0.05)
        runner = await consume(one_shard, p, recording, kinesis, limit=20, lease_options=lagging)
    assert recording.behind[0] > 0  # the first batch was behind the tip of the shard
    logged = [
        (int(m[1]), int(m[2]))
        for m in re.finditer(r"MillisBehindLatest=(\d+) iterator age=(\d+) ms", caplog.text)
    ]
    assert any(behind > 0 and age > 0 for behind, age in logged), caplog.text[-2000:]
    (progress,) = runner.stats.shards.values()
    assert (progress.millis_behind_latest, progress.iterator_age_ms) == (0, 0)  # caught up


async def test_the_watchdog_restarts_a_stuck_shard(
    one_shard: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    events = synthetic_events(150, users=10, items=30, seed=24)
    produce(one_shard, events)
    recording = Recording(hang=True)
    # far longer than a healthy batch takes on a loaded moto, so only the stuck one trips it
    watched = replace(FAST, watchdog_timeout=2.0)
    async with pipeline(one_shard) as p:
        kinesis = FailingGetRecords(p.clients.kinesis, {})
        runner = await consume(one_shard, p, recording, kinesis, limit=50, lease_options=watched)
        assert runner.stats.watchdog_restarts == 1
        assert "no progress" in caplog.text
        assert recording.applied == in_stream_order(one_shard)  # the stuck batch, redelivered
        assert runner.stats.events == len(events)
        totals = Counter(e.item_id for e in events)
        assert {f.item_id: f.total for f in await p.online.items(sorted(totals)) if f} == totals


async def test_a_slow_batch_is_restarted_once_then_given_the_time_it_needs(
    one_shard: Settings,
) -> None:
    events = synthetic_events(150, users=10, items=30, seed=25)
    produce(one_shard, events)
    recording = Recording(slow=1.5)  # over the timeout, under twice the timeout
    watched = replace(FAST, watchdog_timeout=1.0)
    async with pipeline(one_shard) as p:
        kinesis = FailingGetRecords(p.clients.kinesis, {})
        runner = await consume(one_shard, p, recording, kinesis, limit=500, lease_options=watched)
        assert runner.stats.watchdog_restarts == 1  # not one per attempt, forever
        assert recording.applied == in_stream_order(one_shard)
        totals = Counter(e.item_id for e in events)
        assert {f.item_id: f.total for f in await p.online.items(sorted(totals)) if f} == totals
