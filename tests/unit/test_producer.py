"""The batching producer on botocore's Stubber: call sizes, partial failures, retries, order."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from producers.events import Event, InvalidEvent
from producers.producer import (
    MAX_BYTES_PER_CALL,
    EventProducer,
    FailedEvent,
    ProduceError,
    Record,
    backoff_delay,
    plan_batches,
    split_result,
)
from producers.synthetic import synthetic_events
from producers.testing import FaultInjectingKinesis, random_faults

STREAM = "events"
THROTTLED = "ProvisionedThroughputExceededException"


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


class Sleeps(list[float]):
    """An injected sleep that only remembers how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def event(index: int, user: str = "u1") -> Event:
    # equal-length ids so every record has the same size
    return Event(
        event_id=f"e-{index:04d}",
        user_id=user,
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
        else {"SequenceNumber": str(49_000 + i), "ShardId": "shardId-000000000000"}
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


def producer(kinesis: Any, sleeps: Sleeps | None = None, **kwargs: Any) -> EventProducer:
    return EventProducer(
        kinesis,
        STREAM,
        sleep=sleeps if sleeps is not None else Sleeps(),
        rand=lambda: 0.5,
        **kwargs,
    )


def test_1200_events_go_out_in_three_calls_of_at_most_500(kinesis: Any, stub: Stubber) -> None:
    events = synthetic_events(1200)
    for start, end in ((0, 500), (500, 1000), (1000, 1200)):
        expect(stub, events[start:end])
    p = producer(kinesis)
    p.put_many(events)
    assert p.metrics.calls == 2  # two full calls went out while buffering
    result = p.flush()
    assert (result.sent, result.failed) == (1200, [])
    assert (p.metrics.calls, p.metrics.sent, p.metrics.retried) == (3, 1200, 0)


def test_plan_batches_stops_a_call_before_5_mib() -> None:
    records = [Record(f"e{i}", "u1", b"x" * 100 * 1024) for i in range(60)]
    batches = plan_batches(records)
    assert [len(b) for b in batches] == [51, 9]  # 51 x (102,400 + 2) bytes fit in 5 MiB, 52 not
    assert all(sum(r.size for r in b) <= MAX_BYTES_PER_CALL for b in batches)
    assert [r for b in batches for r in b] == records


def test_plan_batches_stops_a_call_at_500_records() -> None:
    records = [Record(f"e{i}", "u1", b"{}") for i in range(1001)]
    assert [len(b) for b in plan_batches(records)] == [500, 500, 1]
    assert plan_batches([]) == []


def test_the_producer_splits_calls_by_bytes(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(10)]
    size = Record.of(events[0]).size
    for start in (0, 3, 6, 9):
        expect(stub, events[start : start + 3])
    p = producer(kinesis, max_batch_bytes=3 * size + 1)
    p.put_many(events)
    assert p.flush().sent == 10


def test_a_partial_failure_resends_exactly_the_failed_entries(kinesis: Any, stub: Stubber) -> None:
    events = [event(i, user=f"u{i}") for i in range(6)]
    expect(stub, events, errors={1: THROTTLED, 4: "InternalFailure"})
    expect(stub, [events[1], events[4]])
    sleeps = Sleeps()
    p = producer(kinesis, sleeps)
    p.put_many(events)
    result = p.flush()
    assert (result.sent, result.failed) == (6, [])
    assert (p.metrics.calls, p.metrics.retried) == (2, 2)
    assert sleeps == [0.5 * 0.1]  # full jitter: rand() x base before the first retry


def test_a_200_with_failed_record_count_0_is_still_read_entry_by_entry() -> None:
    records = [Record(f"e{i}", "u1", b"{}") for i in range(3)]
    response = {
        "FailedRecordCount": 0,  # lies
        "Records": [{"SequenceNumber": "1"}, {"ErrorCode": THROTTLED}, {"SequenceNumber": "2"}],
    }
    sent, retry, failed = split_result(records, response, max_attempts=3)
    assert (sent, [r.event_id for r in retry], failed) == (2, ["e1"], [])
    assert retry[0].attempts == 1


def test_a_non_retryable_code_is_reported_by_event_id(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(3)]
    expect(stub, events, errors={2: "KMSAccessDeniedException"})
    p = producer(kinesis)
    p.put_many(events)
    result = p.flush()
    message = "KMSAccessDeniedException for entry 2"
    assert result.failed == [FailedEvent("e-0002", "KMSAccessDeniedException", message)]
    assert result.sent == 2 and not result.ok
    assert p.metrics.failed == Counter({"KMSAccessDeniedException": 1})
    assert p.metrics.calls == 1  # not retried


def test_running_out_of_attempts_reports_the_event(kinesis: Any, stub: Stubber) -> None:
    events = [event(0), event(1)]
    expect(stub, events, errors={0: THROTTLED})
    expect(stub, [events[0]], errors={0: THROTTLED})
    expect(stub, [events[0]], errors={0: THROTTLED})
    sleeps = Sleeps()
    p = producer(kinesis, sleeps, max_attempts=3)
    p.put_many(events)
    result = p.flush()
    assert result.sent == 1
    assert [(f.event_id, f.error_code) for f in result.failed] == [("e-0000", THROTTLED)]
    assert sleeps == [0.05, 0.1]  # the backoff doubles between retries
    assert p.metrics.failed[THROTTLED] == 1


def test_a_retried_event_goes_before_later_events_of_its_key(kinesis: Any, stub: Stubber) -> None:
    k1, x1, k2, k3 = event(1, "k"), event(2, "x"), event(3, "k"), event(4, "k")
    expect(stub, [k1, x1], errors={0: THROTTLED})
    expect(stub, [k1, k2])  # the failed one first, never k2 and k3 ahead of it
    expect(stub, [k3])
    # two records a call; the third put sends a call while k2 waits in the buffer behind k1
    p = producer(kinesis, max_batch_bytes=2 * Record.of(k1).size)
    p.put_many([k1, x1, k2, k3])
    assert p.flush().sent == 4


def test_backoff_is_capped() -> None:
    assert backoff_delay(1, lambda: 1.0, base=0.1, cap=5.0) == 0.1
    assert backoff_delay(4, lambda: 1.0, base=0.1, cap=5.0) == pytest.approx(0.8)
    assert backoff_delay(30, lambda: 1.0, base=0.1, cap=5.0) == 5.0
    assert backoff_delay(30, lambda: 0.0) == 0.0


def test_a_failed_call_keeps_the_events_buffered(kinesis: Any, stub: Stubber) -> None:
    events = [event(i) for i in range(3)]
    stub.add_client_error("put_records", "ResourceNotFoundException", "no such stream")
    expect(stub, events)
    p = producer(kinesis)
    p.put_many(events)
    with pytest.raises(ClientError):
        p.flush()
    assert p.flush().sent == 3  # nothing was lost, and the order is the same


def test_leaving_the_block_with_unsent_events_raises(kinesis: Any, stub: Stubber) -> None:
    expect(stub, [event(0)], errors={0: "KMSDisabledException"})
    with pytest.raises(ProduceError) as caught, producer(kinesis) as p:
        p.put(event(0))
    assert caught.value.result.failed[0].event_id == "e-0000"
    with pytest.raises(RuntimeError):
        p.put(event(1))


def test_an_event_over_the_size_limit_is_refused_on_put(kinesis: Any) -> None:
    # the constructor does not measure the JSON; parse() would have refused this event
    big = event(0).model_copy(update={"context": {f"k{i}": "é" * 256 for i in range(16)}})
    with pytest.raises(InvalidEvent) as caught:
        producer(kinesis).put(big)
    assert caught.value.field == "<event>"


class Recorder:
    """An in-memory put_records that accepts everything and remembers what it got."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self._lock = threading.Lock()

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.data.extend(r["Data"] for r in kwargs["Records"])
        return {
            "FailedRecordCount": 0,
            "Records": [{"SequenceNumber": "1"} for _ in kwargs["Records"]],
        }


def test_threads_putting_at_once_lose_and_duplicate_nothing() -> None:
    recorder = Recorder()
    flaky = FaultInjectingKinesis(recorder, random_faults(0.2, seed=3))
    p = EventProducer(flaky, STREAM, max_batch_records=50, sleep=lambda _: None, max_attempts=20)
    chunks = [synthetic_events(250, seed=seed) for seed in range(4)]
    threads = [threading.Thread(target=p.put_many, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = p.flush()
    assert (result.sent, result.failed) == (1000, [])
    ids = [Event.from_json(d).event_id for d in recorder.data]
    assert sorted(ids) == sorted(e.event_id for chunk in chunks for e in chunk)
    assert p.metrics.retried > 0  # the faults did happen
