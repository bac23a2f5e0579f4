"""What the producers send and what they report: records, deliveries, failures, flush results.

Kinesis's PutRecords limits are here too; the batching core never crosses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from producers.events import MAX_EVENT_BYTES, Event, InvalidEvent

MAX_RECORDS_PER_CALL = 500  # PutRecords: entries per call
MAX_BYTES_PER_CALL = 5 * 1024 * 1024  # PutRecords: data plus partition keys per call
MAX_RECORD_BYTES = 1024 * 1024  # one record: data plus partition key


@dataclass(frozen=True, slots=True)
class Record:
    """One event as one Kinesis record: its bytes, partition key and size (data plus key)."""

    event_id: str
    partition_key: str
    data: bytes
    size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.data) + len(self.partition_key.encode()))

    @classmethod
    def of(cls, event: Event) -> Record:
        """The record of an event. Refuses an event over the contract's size limit."""
        data = event.to_json()
        if len(data) > MAX_EVENT_BYTES:
            raise InvalidEvent("<event>", f"{len(data)} bytes as JSON, at most {MAX_EVENT_BYTES}")
        return cls(event.event_id, event.partition_key, data)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where an event was written. ``sub_sequence`` is its index inside a KPL-aggregated record
    (``None`` when the record carried this event alone); ``attempts`` counts the calls that
    carried it."""

    event_id: str
    shard_id: str
    sequence_number: str
    sub_sequence: int | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """An event that was not written: the error code and message of its last attempt.

    Codes are Kinesis's (``ProvisionedThroughputExceededException``, ``InternalFailure``,
    ``KMSAccessDeniedException``, ...) or, for a whole call that raised, the exception's
    (``ReadTimeoutError``, ``EndpointConnectionError``, ...). After a timeout the event may have
    been written anyway: delivery is at least once.
    """

    event_id: str
    error_code: str
    message: str
    attempts: int = 1


@dataclass
class ProduceResult:
    """What a flush covered: how many events are in the stream, and exactly which are not."""

    sent: int = 0
    failed: list[FailedEvent] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every event was written."""
        return not self.failed
