"""The batching producer: buffered events out to Kinesis with PutRecords, failures as values.

Calls carry at most 500 records and 5 MiB (data plus partition key bytes), one event per record.
A 200 response can still have dropped records, so every entry of the response is checked; only
the entries that came back with an ``ErrorCode`` are sent again, with exponential backoff and full
jitter, while the code is retryable. Other codes, and running out of attempts, put the event in
``ProduceResult.failed``. Nothing is dropped silently.

Order. The partition key is ``user_id``, so a user's events share one shard. Failed entries go back
to the front of the queue in their original order: a later-buffered event of a key is never sent
in a later call than an earlier failed event of that key. What cannot be undone: when an entry of
key K fails, the later entries of K in the *same* call that succeeded are already in the stream,
and the retried event lands after them. Consumers that need a user's exact order use the event
``timestamp``, never arrival order.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from producers.events import MAX_EVENT_BYTES, Event, InvalidEvent

MAX_RECORDS_PER_CALL = 500  # Kinesis PutRecords limits
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
RETRYABLE_CODES = frozenset({"ProvisionedThroughputExceededException", "InternalFailure"})


@dataclass(frozen=True)
class Record:
    """One event as one Kinesis record. ``attempts`` counts the calls that already carried it."""

    event_id: str
    partition_key: str
    data: bytes
    attempts: int = 0
    seq: int = 0  # position in the producer's buffer order

    @property
    def size(self) -> int:
        """Bytes this record counts against a call's 5 MiB: data plus partition key."""
        return len(self.data) + len(self.partition_key.encode())

    @classmethod
    def of(cls, event: Event) -> Record:
        """The record of an event. Refuses an event over the contract's size limit."""
        data = event.to_json()
        if len(data) > MAX_EVENT_BYTES:
            raise InvalidEvent("<event>", f"{len(data)} bytes as JSON, at most {MAX_EVENT_BYTES}")
        return cls(event.event_id, event.partition_key, data)


@dataclass(frozen=True)
class FailedEvent:
    """An event that was not written: AWS's ``error_code`` and message for its last attempt."""

    event_id: str
    error_code: str
    message: str


@dataclass
class ProduceResult:
    """What a flush did: how many events are in the stream, and which ones are not."""

    sent: int = 0
    failed: list[FailedEvent] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every event was written."""
        return not self.failed


@dataclass
class ProducerMetrics:
    """Counters since the producer was made: records sent, resent, failed by code, and calls."""

    sent: int = 0
    retried: int = 0
    calls: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    def add(self, sent: int, retried: int, failed: list[FailedEvent]) -> None:
        """Count one call's outcome."""
        self.calls += 1
        self.sent += sent
        self.retried += retried
        self.failed.update(f.error_code for f in failed)


class ProduceError(Exception):
    """Leaving ``with EventProducer(...)`` while events could not be written. Has ``result``."""

    def __init__(self, result: ProduceResult) -> None:
        super().__init__(f"{len(result.failed)} events not written, first: {result.failed[0]}")
        self.result = result


def plan_batches(
    records: Iterable[Record],
    max_records: int = MAX_RECORDS_PER_CALL,
    max_bytes: int = MAX_BYTES_PER_CALL,
) -> list[list[Record]]:
    """Split ``records``, in order, into calls of at most ``max_records`` and ``max_bytes``."""
    batches: list[list[Record]] = []
    size = 0
    for record in records:
        if not batches or len(batches[-1]) == max_records or size + record.size > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(record)
        size += record.size
    return batches


def split_result(
    records: Sequence[Record], response: Mapping[str, Any], max_attempts: int
) -> tuple[int, list[Record], list[FailedEvent]]:
    """Sort one PutRecords answer into ``(sent, to_retry, failed)``; entries match by position.

    ``FailedRecordCount`` is not trusted: each entry is read. ``to_retry`` holds, in order, the
    records with a retryable code that have been carried by fewer than ``max_attempts`` calls,
    their ``attempts`` counting this one; the others with an ``ErrorCode`` are ``failed``.
    """
    entries = response.get("Records", [])
    if len(entries) != len(records):
        raise ValueError(f"PutRecords answered {len(entries)} entries for {len(records)} records")
    sent, retry, failed = 0, [], []
    for record, entry in zip(records, entries, strict=True):
        code = entry.get("ErrorCode")
        attempts = record.attempts + 1
        if not code:
            sent += 1
        elif code in RETRYABLE_CODES and attempts < max_attempts:
            retry.append(replace(record, attempts=attempts))
        else:
            failed.append(FailedEvent(record.event_id, code, entry.get("ErrorMessage", "")))
    return sent, retry, failed


def backoff_delay(
    retry: int, rand: Callable[[], float], base: float = 0.1, cap: float = 5.0
) -> float:
    """Seconds to wait before retry round ``retry`` (1, 2, ...): full jitter, capped."""
    return rand() * min(cap, base * 2 ** (retry - 1))


class EventProducer:
    """A thread-safe batching producer for one Kinesis stream.

    ``put`` buffers, and sends a call as soon as the buffer holds a full one; ``flush`` sends
    everything and returns the ``ProduceResult`` of every event sent since the previous ``flush``
    (automatic sends included). One send runs at a time, so calls never overtake each other.
    If ``put_records`` raises (the whole call failed, after botocore's own retries), the call's
    records go back to the front of the buffer unsent and the exception propagates. Leaving a
    ``with`` block flushes and raises ``ProduceError`` if any event could not be written.
    ``max_attempts`` bounds the calls that carry one event; the batch limits may be lowered, never
    raised past Kinesis's. ``client`` is a boto3 Kinesis client (anything with ``put_records``);
    ``sleep`` and ``rand`` are injected so tests neither wait nor depend on chance.
    """

    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        max_batch_records: int = MAX_RECORDS_PER_CALL,
        max_batch_bytes: int = MAX_BYTES_PER_CALL,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._client, self._stream = client, stream_name
        self._max_attempts, self._base, self._cap = max_attempts, base_delay, max_delay
        self._max_records = min(max_batch_records, MAX_RECORDS_PER_CALL)
        self._max_bytes = min(max_batch_bytes, MAX_BYTES_PER_CALL)
        self._sleep, self._rand = sleep, rand
        self._lock = threading.Lock()  # guards buffer, pending result, metrics
        self._send_lock = threading.Lock()  # one sender at a time keeps calls in order
        self._buffer: deque[Record] = deque()
        self._buffered_bytes = 0
        self._pending = ProduceResult()  # results not yet returned by flush()
        self._metrics = ProducerMetrics()
        self._retry_round = 0
        self._seq = 0
        self._closed = False

    def put(self, event: Event) -> None:
        """Buffer one event (sending a call if the buffer now holds a full one)."""
        self.put_many([event])

    def put_many(self, events: Iterable[Event]) -> None:
        """Buffer events in order, sending each full call as soon as it is complete."""
        for event in events:
            record = Record.of(event)
            with self._lock:
                if self._closed:
                    raise RuntimeError("producer is closed")
                self._seq += 1
                self._buffer.append(replace(record, seq=self._seq))
                self._buffered_bytes += record.size
                full = self._has_full_batch()
            if full:
                self._send(until=None)

    def flush(self) -> ProduceResult:
        """Send everything buffered; the result covers every event since the last ``flush``.

        Events other threads put while the flush runs may ride along, but are not waited for.
        """
        with self._lock:
            until = self._seq
        self._send(until)
        with self._lock:
            result, self._pending = self._pending, ProduceResult()
        return result

    def close(self) -> ProduceResult:
        """Flush and refuse further events. Returns the final ``flush`` result."""
        with self._lock:
            self._closed = True
        return self.flush()

    @property
    def metrics(self) -> ProducerMetrics:
        """A snapshot of the counters."""
        with self._lock:
            return replace(self._metrics, failed=Counter(self._metrics.failed))

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        result = self.close()
        if not result.ok and exc_type is None:
            raise ProduceError(result)

    def _has_full_batch(self) -> bool:
        return len(self._buffer) >= self._max_records or self._buffered_bytes > self._max_bytes

    def _take(self, until: int | None) -> list[Record]:
        """The next call's records: a full call when ``until`` is None, else while the buffer's
        front was put at or before ``until``."""
        with self._lock:
            if not self._buffer:
                return []
            if not (self._has_full_batch() if until is None else self._buffer[0].seq <= until):
                return []
            head = [self._buffer[i] for i in range(min(self._max_records, len(self._buffer)))]
            count = len(plan_batches(head, self._max_records, self._max_bytes)[0])
            batch = [self._buffer.popleft() for _ in range(count)]
            self._buffered_bytes -= sum(r.size for r in batch)
            return batch

    def _give_back(self, records: list[Record]) -> None:
        with self._lock:  # to the front, in order: nothing of their key may overtake them
            self._buffer.extendleft(reversed(records))
            self._buffered_bytes += sum(r.size for r in records)

    def _send(self, until: int | None) -> None:
        with self._send_lock:
            while batch := self._take(until):
                try:
                    response = self._client.put_records(
                        StreamName=self._stream,
                        Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in batch],
                    )
                except Exception:
                    self._give_back(batch)
                    raise
                sent, retry, failed = split_result(batch, response, self._max_attempts)
                self._give_back(retry)
                with self._lock:
                    self._pending.sent += sent
                    self._pending.failed.extend(failed)
                    self._metrics.add(sent, len(retry), failed)
                self._retry_round = self._retry_round + 1 if retry else 0
                if retry:
                    self._sleep(backoff_delay(self._retry_round, self._rand, self._base, self._cap))
