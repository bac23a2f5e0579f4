"""What the producers send and what they report: records, deliveries, failures, flush results.

Kinesis's PutRecords limits are here too; the batching core never crosses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from producers.events import MAX_EVENT_BYTES, Event, InvalidEvent

MAX_RECORDS_PER_CALL = 500  # PutRecords: entries per call
MAX_BYTES_PER_CALL = 5 * 1024 * 1024  # PutRecords: data plus partition keys per call
MAX_RECORD_BYTES = 1024 * 1024  # one record: data plus partition key
# Memory a held event costs beyond its wire bytes (its entry in the core, its future, its
# partition key string), measured by bench/producer.py at about 460 bytes: the buffer bound
# counts it so that ``buffer_bytes`` bounds the memory held, not only the bytes to send.
HELD_OVERHEAD_BYTES = 512


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
        event_id, partition_key, data, _ = encode(event)
        return cls(event_id, partition_key, data)

    @property
    def fields(self) -> Encoded:
        """``(event_id, partition_key, data, size)``, as ``encode`` gives them."""
        return self.event_id, self.partition_key, self.data, self.size


# A record's fields: (event_id, partition_key, data, size), size as ``Record.size``.
Encoded = tuple[str, str, bytes, int]


def encode(event: Event) -> Encoded:
    """The fields of an event's record, refusing an event over the contract's size limit.

    What ``EventProducer.put_many`` buffers instead of ``Record`` objects: a plain tuple of
    strings, bytes and an int, which CPython's cyclic GC stops tracking, and costs a fifth of
    a frozen dataclass to build.
    """
    return encode_many((event,))[0]


def encode_many(events: Iterable[Event]) -> list[Encoded]:
    """``encode`` each event, in order; all are encoded (and checked) before any is returned.

    Runs once per event put: ``Event.to_json`` is written out (the model's own serializer,
    unset optionals omitted), and the key's UTF-8 length is its length when it is ASCII, as
    an ``Id`` always is.
    """
    encoded: list[Encoded] = []
    for event in events:
        data = event.__pydantic_serializer__.to_json(event, exclude_none=True)
        if len(data) > MAX_EVENT_BYTES:
            raise InvalidEvent("<event>", f"{len(data)} bytes as JSON, at most {MAX_EVENT_BYTES}")
        key = event.partition_key
        key_bytes = len(key) if key.isascii() else len(key.encode())
        encoded.append((event.event_id, key, data, len(data) + key_bytes))
    return encoded


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


# How the core hands a delivery to the driver: ``Delivery``'s fields in order. A future keeps
# this tuple (CPython's GC stops tracking a tuple of strings and ints) and makes the
# ``Delivery`` only when asked: a frozen dataclass costs about 1 µs to build, once per event.
DeliveryFields = tuple[str, str, str, int | None, int]


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
