"""The producers against the embedded stack: real clients, real routing, real shard maps."""

from __future__ import annotations

import json
from collections import defaultdict

from consumers.runner import decode
from feature_store.transforms import Sequenced
from infra.clients import async_client, client
from infra.settings import Settings
from producers.async_producer import AsyncEventProducer
from producers.events import Event
from producers.producer import EventProducer
from producers.shards import load_shard_map
from producers.synthetic import synthetic_events
from producers.testing import THROTTLED, FaultInjectingKinesis, ManualClock, mixed_faults
from tests.streams import read_records, read_shards


def assert_exactly_once(sent: list[Event], by_shard: dict[str, list[Event]]) -> None:
    received = [e for events in by_shard.values() for e in events]
    assert sorted(e.event_id for e in received) == sorted(e.event_id for e in sent)
    shards_of: dict[str, set[str]] = {}
    for shard, events in by_shard.items():
        for e in events:
            shards_of.setdefault(e.user_id, set()).add(shard)
    assert all(len(shards) == 1 for shards in shards_of.values()), "a user's events on one shard"


def assert_user_order(by_shard: dict[str, list[Event]]) -> None:
    for events in by_shard.values():
        for user in {e.user_id for e in events}:
            times = [e.timestamp for e in events if e.user_id == user]
            assert times == sorted(times), f"user {user} out of order"


def test_1000_events_arrive_exactly_once_in_user_order_where_the_map_says(
    applied: Settings,
) -> None:
    kinesis = client("kinesis", applied)
    events = synthetic_events(1000, users=500)
    with EventProducer(kinesis, applied.stream_name, max_batch_records=100) as producer:
        futures = producer.put_many(events)
        result = producer.flush()
    assert (result.sent, result.failed) == (1000, [])
    assert producer.metrics.calls >= 10 and producer.metrics.records_per_call_max <= 100
    by_shard = read_shards(kinesis, applied.stream_name)
    assert len(by_shard) == applied.stream_shards
    assert all(by_shard.values()), "every shard got some users"
    assert_exactly_once(events, by_shard)
    assert_user_order(by_shard)
    shard_map = load_shard_map(kinesis, applied.stream_name)  # MD5 routing as moto does it
    assert all(
        f.result().shard_id == shard_map.shard_of(e.partition_key)
        for f, e in zip(futures, events, strict=True)
    )


def test_throttled_entries_are_resent_and_nothing_is_duplicated(applied: Settings) -> None:
    # moto never throttles; the wrapper fails entries without forwarding them, as Kinesis does
    kinesis, clock = client("kinesis", applied), ManualClock()
    faults = mixed_faults({THROTTLED: 0.2}, seed=7)
    flaky = FaultInjectingKinesis(kinesis, faults, latency=0.02, sleep=clock.sleep)
    events = synthetic_events(1000, users=300, seed=1)
    producer = EventProducer(flaky, applied.stream_name, clock=clock, max_attempts=20)
    producer.put_many(events)
    result = producer.close()
    assert (result.sent, result.failed) == (1000, [])
    assert producer.metrics.retried > 100
    assert_exactly_once(events, read_shards(kinesis, applied.stream_name))


def test_2000_events_under_throttling_and_timeouts_through_the_real_client(
    applied: Settings,
) -> None:
    kinesis, clock = client("kinesis", applied), ManualClock()
    flaky = FaultInjectingKinesis(
        kinesis,
        mixed_faults({THROTTLED: 0.2}, seed=2),
        timeouts=0.05,
        latency=0.02,  # of test time: calls take a while, as on AWS, so calls fill up
        sleep=clock.sleep,
    )
    events = synthetic_events(2000, users=200, seed=9)
    producer = EventProducer(
        flaky, applied.stream_name, clock=clock, buffer_events=400, put_timeout=None
    )
    futures = producer.put_many(events)
    result = producer.close()
    failed = {f.event_id for f in result.failed}
    assert result.sent + len(failed) == 2000
    by_shard = read_shards(kinesis, applied.stream_name)
    written = {e.event_id for shard in by_shard.values() for e in shard}
    assert {e.event_id for e in events} - failed <= written  # at least once, or reported
    assert all(f.done() for f in futures)
    for shard in by_shard.values():  # each key's events first written in put order
        first: dict[str, list[int]] = defaultdict(list)
        for e in {e.event_id: e for e in shard}.values():
            first[e.user_id].append(e.timestamp)
        assert all(times == sorted(times) for times in first.values())
    assert producer.metrics.max_buffered_events <= 400
    assert producer.metrics.call_errors["ReadTimeoutError"] == flaky.timeouts_raised > 0


async def test_the_async_producer_writes_through_aiobotocore(applied: Settings) -> None:
    events = synthetic_events(600, users=300, seed=4)
    async with (
        async_client("kinesis", applied) as kinesis,
        AsyncEventProducer(kinesis, applied.stream_name) as producer,
    ):
        futures = await producer.put_many(events)
        result = await producer.flush()
        deliveries = [await f for f in futures]
    assert (result.sent, result.failed) == (600, [])
    by_shard = read_shards(client("kinesis", applied), applied.stream_name)
    assert_exactly_once(events, by_shard)
    assert_user_order(by_shard)
    assert {d.shard_id for d in deliveries} == set(by_shard)


def test_aggregated_records_round_trip_through_the_stream_and_the_runner(
    applied: Settings,
) -> None:
    kinesis = client("kinesis", applied)
    events = synthetic_events(1500, users=40, seed=6)
    with EventProducer(kinesis, applied.stream_name, aggregate=True) as producer:
        futures = producer.put_many(events)
    raw = read_records(kinesis, applied.stream_name)
    assert sum(len(r) for r in raw.values()) < len(events) / 5, "events share records"
    decoded: list[Sequenced] = []
    for shard_id, records in raw.items():
        events_of_shard, poison = decode(shard_id, records)
        assert poison == []
        positions = [s.position for s in events_of_shard]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        decoded += events_of_shard
    assert sorted(s.event.event_id for s in decoded) == sorted(e.event_id for e in events)
    where = {s.event.event_id: (s.shard_id, s.sequence_number, s.sub_sequence) for s in decoded}
    for future in futures:
        delivery = future.result()
        assert where[delivery.event_id] == (
            delivery.shard_id,
            delivery.sequence_number,
            delivery.sub_sequence or 0,
        )
    for shard_id in raw:  # each user's events in put order within the shard
        times: dict[str, list[int]] = defaultdict(list)
        for s in decoded:
            if s.shard_id == shard_id:
                times[s.event.user_id].append(s.event.timestamp)
        assert all(t == sorted(t) for t in times.values())
    assert json.loads(events[0].to_json())["event_id"] in where
