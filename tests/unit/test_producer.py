"""EventProducer on botocore's Stubber: call sizes, partial failures, retries, order, results.

Every producer here runs on a ``ManualClock`` (backoff waits jump instead of sleeping, and are
recorded), ``linger=None`` (a partial call goes out only on flush, so calls are predictable) and
without pacing (the Stubber answers only the calls queued on it).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from producers.errors import DeliveryFailed, ProduceError, ProducerClosed
from producers.events import Event, InvalidEvent
from producers.producer import Delivery, EventProducer, FailedEvent, Record
from producers.synthetic import synthetic_events
from producers.testing import (
    FaultInjectingKinesis,
    InMemoryKinesis,
    ManualClock,
    fail_calls,
    random_faults,
)

STREAM = "events"
THROTTLED = "ProvisionedThroughputExceededException"
SHARD = "shardId-000000000000"


@pytest.fixture
def kinesis() -> Any:
    return boto3.client(
        "kinesis", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def stub(kinesis: Any) -> Iterator[Stubber]:
    with Stubber(kinesis) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def event(index: int, user: str | None = None) -> Event:
    """Equal-length ids, so every record has the same size; one user per event by default."""
    return Event(
        event_id=f"e-{index:04d}",
        user_id=user or f"u{index:04d}",
        item_id="i1",
        event_type="view",
        timestamp=1_700_000_000_000 + index,
    )


def expect(stub: Stubber, events: Sequence[Event], errors: dict[int, str] | None = None) -> None:
    """Queue one put_records answer for exactly ``events``; ``errors`` fails entries by index."""
    errors = errors or {}
    records = [
        {"ErrorCode": errors[i], "ErrorMessage": f"{errors[i]} for entry {i}"}
        if i in errors
        else {"SequenceNumber": str(49_000 + i), "ShardId": SHARD}
        for i in range(len(events))
    ]
    params = {
        "StreamName": STREAM,
        "Records": [{"Data": e.to_json(), "PartitionKey": e.partition_key} for e in events],
    }
    response: dict[str, Any] = {"Records": records}
    if errors:  # the Stubber's model refuses FailedRecordCount=0, which real Kinesis sends
        response["FailedRecordCount"] = len(errors)
    stub.add_response("put_records", response, params)


def producer(kinesis: Any, clock: ManualClock | None = None, **options: Any) -> EventProducer:
    options = {"linger": None, "rate_limit": False} | options
    return EventProducer(kinesis, STREAM, clock=clock or ManualClock(), rand=lambda: 0.5, **options)


def test_1200_events_go_out_in_calls_of_at_most_500(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(1200)]
    for start, end in ((0, 500), (500, 1000), (1000, 1200)):
        expect(stub, events[start:end])
    p = producer(kinesis)
    p.put_many(events)
    result = p.flush()
    assert (result.sent, result.failed) == (1200, [])
    metrics = p.metrics
    assert (metrics.calls, metrics.sent, metrics.retried, metrics.records_per_call_max) == (
        3,
        1200,
        0,
        500,
    )


def test_the_producer_splits_calls_by_bytes(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(10)]
    size = Record.of(events[0]).size
    for start in (0, 3, 6, 9):
        expect(stub, events[start : start + 3])
    p = producer(kinesis, max_batch_bytes=3 * size + 1)
    p.put_many(events)
    assert p.flush().sent == 10


def test_a_partial_failure_resends_exactly_the_failed_entries(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(6)]
    expect(stub, events, errors={1: THROTTLED, 4: "InternalFailure"})
    expect(stub, [events[1], events[4]])
    clock = ManualClock()
    p = producer(kinesis, clock)
    futures = p.put_many(events)
    result = p.flush()
    assert (result.sent, result.failed) == (6, [])
    assert (p.metrics.calls, p.metrics.retried, p.metrics.throttled) == (2, 2, 1)
    assert clock.waits == [0.5 * 0.1]  # full jitter: rand() x base before the first retry
    assert futures[1].result() == Delivery("e-0001", SHARD, "49000", None, attempts=2)
    assert futures[2].result().attempts == 1


def test_a_non_retryable_code_is_reported_by_event_id(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(3)]
    expect(stub, events, errors={2: "KMSAccessDeniedException"})
    p = producer(kinesis)
    futures = p.put_many(events)
    result = p.flush()
    message = "KMSAccessDeniedException for entry 2"
    assert result.failed == [FailedEvent("e-0002", "KMSAccessDeniedException", message)]
    assert result.sent == 2 and not result.ok
    assert p.metrics.failed == Counter({"KMSAccessDeniedException": 1})
    assert p.metrics.calls == 1  # not retried
    with pytest.raises(DeliveryFailed) as caught:
        futures[2].result()
    assert (caught.value.event_id, caught.value.error_code) == (
        "e-0002",
        "KMSAccessDeniedException",
    )


def test_running_out_of_attempts_reports_the_event_and_frees_its_key(
    kinesis: Any, stub: Stubber
) -> None:
    first, second = event(0, "u1"), event(1, "u1")
    for _ in range(3):
        expect(stub, [first], errors={0: THROTTLED})
    expect(stub, [second])  # held back until the first one's fate was known
    clock = ManualClock()
    p = producer(kinesis, clock, max_attempts=3)
    p.put_many([first, second])
    result = p.flush()
    assert result.sent == 1
    assert [(f.event_id, f.error_code, f.attempts) for f in result.failed] == [
        ("e-0000", THROTTLED, 3)
    ]
    assert clock.waits == pytest.approx([0.05, 0.1])  # the backoff doubles between retries
    assert p.metrics.failed[THROTTLED] == 1


def test_a_retried_event_goes_before_later_events_of_its_key(kinesis: Any, stub: Stubber) -> None:
    k1, x1, k2, k3 = event(1, "k"), event(2, "x"), event(3, "k"), event(4, "k")
    expect(stub, [k1, x1], errors={0: THROTTLED})
    expect(stub, [k1])  # k2 and k3 are held back while k1 waits for its retry
    expect(stub, [k2])  # and one event of a key per call: two could race within a call
    expect(stub, [k3])
    p = producer(kinesis, max_batch_bytes=2 * Record.of(k1).size)
    p.put_many([k1, x1, k2, k3])
    assert p.flush().sent == 4


def test_a_call_refused_as_a_whole_fails_its_events_with_the_code(
    kinesis: Any, stub: Stubber
) -> None:
    events = [event(i) for i in range(3)]
    stub.add_client_error("put_records", "ResourceNotFoundException", "no such stream")
    p = producer(kinesis)
    p.put_many(events)
    result = p.flush()
    assert [(f.event_id, f.error_code) for f in result.failed] == [
        (e.event_id, "ResourceNotFoundException") for e in events
    ]
    assert p.metrics.call_errors == Counter({"ResourceNotFoundException": 1})


def test_a_throttled_call_is_retried_as_a_whole(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(2)]
    stub.add_client_error("put_records", "LimitExceededException", "slow down", 400)
    expect(stub, events)
    p = producer(kinesis)
    p.put_many(events)
    assert (p.flush().sent, p.metrics.retried) == (2, 2)


def test_leaving_the_block_with_unsent_events_raises(kinesis: Any, stub: Stubber) -> None:
    expect(stub, [event(0)], errors={0: "KMSDisabledException"})
    with pytest.raises(ProduceError) as caught, producer(kinesis) as p:
        p.put(event(0))
    assert caught.value.result.failed[0].event_id == "e-0000"
    with pytest.raises(ProducerClosed):
        p.put(event(1))
    with pytest.raises(RuntimeError):  # ProducerClosed is one, as before
        p.put(event(1))


def test_an_event_over_the_size_limit_is_refused_on_put(kinesis: Any) -> None:
    # the constructor does not measure the JSON; parse() would have refused this event
    big = event(0).model_copy(update={"context": {f"k{i}": "é" * 256 for i in range(16)}})
    with pytest.raises(InvalidEvent) as caught:
        producer(kinesis).put(big)
    assert caught.value.field == "<event>"


def test_connection_errors_and_timeouts_are_retried() -> None:
    stream = InMemoryKinesis(STREAM)
    flaky = FaultInjectingKinesis(stream, connection_errors=0.3, timeouts=0.3, seed=5)
    events = [event(i) for i in range(300)]
    p = producer(flaky, max_batch_records=20, max_attempts=30)
    futures = p.put_many(events)
    assert (p.flush().sent, p.metrics.failed) == (300, Counter())
    assert p.metrics.call_errors.keys() == {"EndpointConnectionError", "ReadTimeoutError"}
    assert flaky.timeouts_raised and flaky.connection_errors_raised
    written = {Event.from_json(r.data).event_id for r in stream.log}
    assert written == {e.event_id for e in events}
    assert len(stream.log) >= 300  # a timed-out call may have written before it was resent
    assert all(f.result().shard_id.startswith("shardId-") for f in futures)


def test_flush_reports_only_what_resolved_since_the_last_flush(kinesis: Any, stub: Stubber) -> None:
    expect(stub, [event(0)], errors={0: "KMSDisabledException"})
    expect(stub, [event(1)])
    p = producer(kinesis)
    p.put(event(0))
    assert [f.event_id for f in p.flush().failed] == ["e-0000"]
    p.put(event(1))
    assert (p.flush().sent, p.flush().sent) == (1, 0)
    assert p.close().ok


def test_threads_putting_at_once_lose_and_duplicate_nothing() -> None:
    stream = InMemoryKinesis(STREAM)
    flaky = FaultInjectingKinesis(stream, random_faults(0.2, seed=3))
    p = producer(
        flaky,
        max_batch_records=50,
        max_attempts=20,
        linger=0.01,
        buffer_events=300,
        put_timeout=None,
    )
    chunks = [synthetic_events(250, users=100, seed=seed) for seed in range(4)]
    threads = [threading.Thread(target=p.put_many, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = p.flush()
    assert (result.sent, result.failed) == (1000, [])
    ids = [Event.from_json(r.data).event_id for r in stream.log]
    assert sorted(ids) == sorted(e.event_id for chunk in chunks for e in chunk)
    assert p.metrics.retried > 0  # the faults did happen
    assert p.metrics.max_buffered_events <= 300


def test_fail_calls_picks_entries_by_position() -> None:
    stream = InMemoryKinesis(STREAM)
    flaky = FaultInjectingKinesis(stream, fail_calls({0: {1: "InternalFailure"}}))
    p = producer(flaky)
    p.put_many([event(0), event(1), event(2)])
    assert p.flush().sent == 3
    assert [len(call) for call in flaky.calls] == [3, 1]
    assert Event.from_json(flaky.calls[1][0]["Data"]).event_id == "e-0001"
