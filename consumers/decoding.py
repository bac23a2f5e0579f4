"""Decoding Kinesis records into events, shared by every runtime (embedded runner, Lambda, KCL).

Each runtime turns its own record shape (GetRecords output, a Lambda event) into ``RawRecord``s
and calls ``decode_raw``, so poison is judged, and KPL aggregates are split, the same way
everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from consumers.dead_letter import Poison
from feature_store.transforms import Sequenced
from producers.aggregation import deaggregate
from producers.events import Event, InvalidEvent


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kinesis record as every runtime sees it, whatever shape it arrived in."""

    sequence_number: str
    partition_key: str
    data: bytes
    arrival_ms: int  # ApproximateArrivalTimestamp, UTC milliseconds
    # Set by a runtime that hands over user records already split out of KPL aggregates (the
    # KCL): the index inside the aggregate, 0 for a plain record. None: split it here.
    sub_sequence: int | None = None


def decode_raw(shard_id: str, records: Iterable[RawRecord]) -> tuple[list[Sequenced], list[Poison]]:
    """Split records into valid events (in order) and poison records.

    A KPL-aggregated record yields its user records, in order, each with its sub-sequence
    number; a user record that is not a valid event is poison like any other record. A record
    with ``sub_sequence`` set is such a user record already and is not split again.
    """
    events: list[Sequenced] = []
    poison: list[Poison] = []
    for record in records:
        parts = _user_records(record)
        for sub, key, data in parts:
            item = _decode_one(shard_id, record, key, data, sub)
            if isinstance(item, Poison):
                poison.append(item)
            else:
                events.append(item)
    return events, poison


def _user_records(record: RawRecord) -> list[tuple[int | None, str, bytes]]:
    """``(sub-sequence, partition key, data)`` of each user record; sub None for a plain one."""
    if record.sub_sequence is not None:
        # the KCL sends 0 for a plain record and for an aggregate's first user record alike;
        # both have the same position, only a poison record's dead-letter key tells them apart
        return [(record.sub_sequence or None, record.partition_key, record.data)]
    users = deaggregate(record.data)
    if users is None:
        return [(None, record.partition_key, record.data)]
    return [(sub, user.partition_key, user.data) for sub, user in enumerate(users)]


def _decode_one(
    shard_id: str, record: RawRecord, key: str, data: bytes, sub: int | None
) -> Sequenced | Poison:
    seq, arrival_ms = record.sequence_number, record.arrival_ms
    try:
        event = Event.from_json(data)
    except InvalidEvent as exc:
        return Poison(shard_id, seq, key, data, arrival_ms, str(exc), sub_sequence=sub)
    return Sequenced(event, shard_id, seq, arrival_ms, sub or 0)


def decode(shard_id: str, records: list[dict[str, Any]]) -> tuple[list[Sequenced], list[Poison]]:
    """Split GetRecords output into valid events (in order) and poison records (see
    ``consumers.decoding.decode_raw``: KPL aggregates yield their user records)."""
    return decode_raw(
        shard_id,
        (
            RawRecord(
                r["SequenceNumber"],
                r["PartitionKey"],
                r["Data"],
                int(r["ApproximateArrivalTimestamp"].timestamp() * 1000),
            )
            for r in records
        ),
    )
