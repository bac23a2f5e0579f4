"""EventProducer under faults and backpressure, on the in-memory stream and a manual clock.

The stress test is the issue's: with 20% of entries throttled and 1% of calls timing out, every
one of 50,000 events is delivered at least once (by event_id) or reported failed, each key's
events are first written in put order, and the buffer never holds more than its bound.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from producers.errors import Backpressure, DeliveryFailed
from producers.events import Event
from producers.metrics import ProducerMetrics
from producers.producer import Delivery, EventProducer, ProduceResult
from producers.synthetic import synthetic_events
from producers.testing import (
    THROTTLED,
    FaultInjectingKinesis,
    InMemoryKinesis,
    ManualClock,
    StoredRecord,
    mixed_faults,
)

STREAM = "events"
BUFFER_EVENTS = 5_000
BUFFER_BYTES = 4 * 1024 * 1024  # memory held: wire bytes plus HELD_OVERHEAD_BYTES per event


def outcomes(futures: Sequence[Future[Delivery]]) -> tuple[list[Delivery], list[str]]:
    """Deliveries, and the ids of the events that failed; every future must be resolved."""
    delivered, failed = [], []
    for future in futures:
        assert future.done()
        try:
            delivered.append(future.result())
        except DeliveryFailed as exc:
            failed.append(exc.event_id)
    return delivered, failed


def check_delivery(
    events: Sequence[Event],
    futures: Sequence[Future[Delivery]],
    result: ProduceResult,
    log: Sequence[StoredRecord],
) -> list[str]:
    """At least once or reported, each delivery where it says; returns the written ids."""
    delivered, failed = outcomes(futures)
    assert sorted([d.event_id for d in delivered] + failed) == sorted(e.event_id for e in events)
    assert sorted(f.event_id for f in result.failed) == sorted(failed)
    assert result.sent == len(delivered)
    written = [json.loads(r.data)["event_id"] for r in log]
    at = {
        (r.shard_id, r.sequence_number): event_id for r, event_id in zip(log, written, strict=True)
    }
    assert all(at[(d.shard_id, d.sequence_number)] == d.event_id for d in delivered)
    return written


def check_key_order(events: Sequence[Event], written: Sequence[str]) -> None:
    """For each key, the first write of each of its events comes in put order."""
    put_order = {e.event_id: i for i, e in enumerate(events)}
    key_of = {e.event_id: e.partition_key for e in events}
    first: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for event_id in written:
        if event_id not in seen:
            seen.add(event_id)
            first[key_of[event_id]].append(put_order[event_id])
    assert all(order == sorted(order) for order in first.values())


def check_bounded(metrics: ProducerMetrics) -> None:
    assert 0 < metrics.max_buffered_events <= BUFFER_EVENTS
    assert 0 < metrics.max_buffered_bytes <= BUFFER_BYTES


def test_50000_events_under_throttling_and_timeouts() -> None:
    events = synthetic_events(50_000, users=2_000, seed=11)
    clock = ManualClock()
    stream = InMemoryKinesis(STREAM, shards=4)
    flaky = FaultInjectingKinesis(
        stream,
        mixed_faults({THROTTLED: 0.2}, seed=1),
        timeouts=0.01,
        latency=0.01,
        sleep=clock.sleep,
        seed=2,
    )
    producer = EventProducer(
        flaky,
        STREAM,
        clock=clock,
        buffer_events=BUFFER_EVENTS,
        buffer_bytes=BUFFER_BYTES,
        put_timeout=None,
    )
    futures = producer.put_many(events)
    result = producer.close()

    written = check_delivery(events, futures, result, stream.log)
    check_key_order(events, written)
    metrics = producer.metrics
    check_bounded(metrics)
    assert set(metrics.failed) <= {THROTTLED, "ReadTimeoutError"}  # never over a limit
    assert metrics.throttled > 5_000 and metrics.call_errors["ReadTimeoutError"] > 0
    assert len(written) - len(set(written)) <= metrics.maybe_duplicated
    assert flaky.timeouts_raised == metrics.call_errors["ReadTimeoutError"]


class GatedKinesis:
    """An in-memory stream whose calls wait for ``gate``: a stalled stream, until opened."""

    def __init__(self) -> None:
        self.stream = InMemoryKinesis(STREAM)
        self.gate = threading.Event()

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        assert self.gate.wait(10), "the test never opened the gate"
        return self.stream.put_records(**kwargs)


def stalled(**options: Any) -> tuple[GatedKinesis, EventProducer, ManualClock]:
    client, clock = GatedKinesis(), ManualClock()
    options = {"buffer_events": 3, "rate_limit": False, "linger": None} | options
    return client, EventProducer(client, STREAM, clock=clock, **options), clock


def test_a_full_buffer_raises_backpressure_at_once_when_asked_to() -> None:
    client, producer, clock = stalled(on_full="raise")
    events = synthetic_events(5)
    futures = producer.put_many(events[:3])
    with pytest.raises(Backpressure) as caught:
        producer.put_many(events[3:])
    assert caught.value.retry_after > 0 and caught.value.accepted == 0
    assert clock.waits == []  # did not wait at all
    client.gate.set()
    assert producer.close().sent == 3
    assert all(f.result().event_id == e.event_id for f, e in zip(futures, events, strict=False))


def test_a_full_buffer_blocks_put_up_to_its_timeout() -> None:
    client, producer, clock = stalled(put_timeout=2.5)
    events = synthetic_events(4)
    producer.put_many(events[:3])
    with pytest.raises(Backpressure):
        producer.put(events[3])
    assert clock.waits == [2.5]  # blocked for the whole timeout (a manual clock jumps it)
    with pytest.raises(Backpressure):
        producer.put(events[3], timeout=0.5)
    assert clock.waits == [2.5, 0.5]
    client.gate.set()
    assert producer.close().sent == 3


def test_a_blocked_put_goes_through_once_the_stream_takes_events_again() -> None:
    client, producer, _ = stalled(put_timeout=None)
    events = synthetic_events(4)
    producer.put_many(events[:3])
    late: list[Future[Delivery]] = []
    putter = threading.Thread(target=lambda: late.append(producer.put(events[3])))
    putter.start()
    putter.join(0.2)
    assert putter.is_alive() and producer.metrics.buffered_events == 3  # waiting for room
    client.gate.set()
    putter.join(10)
    assert not putter.is_alive()
    assert producer.close().sent == 4 and late[0].result().event_id == events[3].event_id
    assert producer.metrics.max_buffered_events == 3
