"""The producer against the embedded stack: every event arrives once, each user's in order."""

from __future__ import annotations

from typing import Any

from infra.clients import client
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from producers.testing import FaultInjectingKinesis, random_faults


def read_stream(kinesis: Any, stream: str) -> dict[str, list[Event]]:
    """Every record of every shard, from the start, as events by shard id."""
    by_shard: dict[str, list[Event]] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        events = by_shard.setdefault(shard["ShardId"], [])
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            events += [Event.from_json(r["Data"]) for r in page["Records"]]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return by_shard


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


def test_1000_events_arrive_exactly_once_in_user_order(applied: Settings) -> None:
    kinesis = client("kinesis", applied)
    events = synthetic_events(1000)
    with EventProducer(kinesis, applied.stream_name, max_batch_records=100) as producer:
        producer.put_many(events)
        result = producer.flush()
    assert (result.sent, result.failed) == (1000, [])
    assert producer.metrics.calls == 10
    by_shard = read_stream(kinesis, applied.stream_name)
    assert len(by_shard) == applied.stream_shards
    assert all(by_shard.values()), "every shard got some users"
    assert_exactly_once(events, by_shard)
    assert_user_order(by_shard)


def test_throttled_entries_are_resent_and_nothing_is_duplicated(applied: Settings) -> None:
    # moto never throttles; the wrapper fails entries without forwarding them, as Kinesis does
    kinesis = client("kinesis", applied)
    flaky = FaultInjectingKinesis(kinesis, random_faults(0.2, seed=7))
    events = synthetic_events(1000, seed=1)
    producer = EventProducer(
        flaky, applied.stream_name, max_batch_records=100, max_attempts=20, sleep=lambda _: None
    )
    producer.put_many(events)
    result = producer.flush()
    assert (result.sent, result.failed) == (1000, [])
    assert producer.metrics.retried > 100
    assert_exactly_once(events, read_stream(kinesis, applied.stream_name))
