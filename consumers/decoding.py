"""Decoding Kinesis records into events, shared by every runtime (embedded runner, Lambda).

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


def decode_raw(shard_id: str, records: Iterable[RawRecord]) -> tuple[list[Sequenced], list[Poison]]:
    """Split records into valid events (in order) and poison records.

    A KPL-aggregated record yields its user records, in order, each with its sub-sequence
    number; a user record that is not a valid event is poison like any other record.
    """
    events: list[Sequenced] = []
    poison: list[Poison] = []
    for record in records:
        users = deaggregate(record.data)
        parts = (
            [(None, record.partition_key, record.data)]
            if users is None
            else [(sub, user.partition_key, user.data) for sub, user in enumerate(users)]
        )
        for sub, key, data in parts:
            item = _decode_one(shard_id, record, key, data, sub)
            if isinstance(item, Poison):
                poison.append(item)
            else:
                events.append(item)
    return events, poison


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
