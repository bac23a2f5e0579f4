"""KPL aggregation: the format (checked against AWS's own aws_kinesis_agg), and consumers reading
aggregated records transparently, with a position per user record."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from consumers.dead_letter import dead_letter_key
from consumers.runner import decode
from feature_store.features import UserFeatures
from feature_store.positions import BEFORE_ALL, Position
from feature_store.rows import Row
from producers.aggregation import MAGIC, Aggregate, UserRecord, deaggregate
from producers.synthetic import synthetic_events

RECORDS = [("user-1", b'{"a":1}'), ("user-2", b"x" * 300), ("user-1", b""), ("é", b"\x00\xff")]
ARRIVAL = datetime(2024, 5, 1, 12, tzinfo=UTC)


def aggregate(records: list[tuple[str, bytes]]) -> Aggregate:
    agg = Aggregate()
    for key, data in records:
        agg.add(key, data)
    return agg


def test_an_aggregate_round_trips_and_knows_its_size_at_every_step() -> None:
    agg = Aggregate()
    for key, data in RECORDS:
        before = agg.size
        cost = agg.cost(key, data)
        agg.add(key, data)
        assert agg.size == before + cost
    data = agg.to_bytes()
    assert agg.size == len(data) + len(agg.partition_key.encode())
    assert data.startswith(MAGIC) and agg.partition_key == "user-1"
    assert deaggregate(data) == [UserRecord(k, d) for k, d in RECORDS]


def test_our_aggregates_are_byte_for_byte_the_kpl_format() -> None:
    theirs = RecordAggregator()
    for key, data in RECORDS:
        theirs.add_user_record(key, data)
    key, _, data = theirs.clear_and_get().get_contents()
    ours = aggregate(RECORDS)
    assert (ours.partition_key, ours.to_bytes()) == (key, data)


def test_the_kpl_deaggregator_reads_ours_and_we_read_theirs_with_hash_keys() -> None:
    boto = {
        "SequenceNumber": "7",
        "PartitionKey": "user-1",
        "ApproximateArrivalTimestamp": ARRIVAL,
        "Data": aggregate(RECORDS).to_bytes(),
    }
    users = list(iter_deaggregate_records([boto], data_format="Boto3"))
    assert [(u["kinesis"]["partitionKey"], u["kinesis"]["subSequenceNumber"]) for u in users] == [
        (k, i) for i, (k, _) in enumerate(RECORDS)
    ]
    assert [base64.b64decode(u["kinesis"]["data"]) for u in users] == [d for _, d in RECORDS]
    theirs = RecordAggregator()
    theirs.add_user_record("k", b"one", explicit_hash_key="123")
    theirs.add_user_record("k", b"two")
    assert deaggregate(theirs.clear_and_get().get_contents()[2]) == [
        UserRecord("k", b"one", "123"),
        UserRecord("k", b"two", None),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b'{"event_id":"e1"}',  # plain JSON
        MAGIC + b"\x0a\x01k" + b"\x00" * 16,  # magic, wrong digest
        MAGIC + b"\xff\xff" + hashlib.md5(b"\xff\xff").digest(),  # digest right, not protobuf
        MAGIC + b"\x1a\x02\x08\x05" + hashlib.md5(b"\x1a\x02\x08\x05").digest(),  # bad index
        b"",
    ],
)
def test_anything_else_is_a_plain_record(data: bytes) -> None:
    assert deaggregate(data) is None


def kinesis_record(seq: str, data: bytes, key: str = "user-1") -> dict[str, Any]:
    return {
        "SequenceNumber": seq,
        "PartitionKey": key,
        "ApproximateArrivalTimestamp": ARRIVAL,
        "Data": data,
    }


def test_decode_yields_the_user_records_of_an_aggregate_in_order_with_positions() -> None:
    events = synthetic_events(4)
    agg = aggregate([(e.user_id, e.to_json()) for e in events[:3]] + [("u9", b"not json")])
    records = [kinesis_record("100", agg.to_bytes()), kinesis_record("200", events[3].to_json())]
    decoded, poison = decode("shardId-1", records)
    assert [s.event for s in decoded] == events
    assert [(s.sequence_number, s.sub_sequence) for s in decoded] == [
        ("100", 0),
        ("100", 1),
        ("100", 2),
        ("200", 0),
    ]
    positions = [s.position for s in decoded]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert [s.mark for s in decoded] == ["100", "100:1", "100:2", "200"]
    assert [(p.sequence_number, p.sub_sequence, p.partition_key) for p in poison] == [
        ("100", 3, "u9")
    ]
    plain_poison = decode("shardId-1", [kinesis_record("300", b"nope")])[1][0]
    assert plain_poison.sub_sequence is None
    keys = {dead_letter_key("dl/", p) for p in (poison[0], plain_poison)}
    assert keys == {
        "dl/dt=2024-05-01/shardId-1-100-3.json",
        "dl/dt=2024-05-01/shardId-1-300.json",
    }


def test_positions_order_sub_records_and_read_marks_stored_before_aggregation() -> None:
    assert Position.parse("49590338271490256608559692538361571095921575989136588898") == Position(
        49590338271490256608559692538361571095921575989136588898, 0
    )
    assert Position.parse("100:2") == Position(100, 2)
    assert Position.mark("100", 0) == "100" and Position.mark("100", 2) == "100:2"
    assert Position(99, 5) < Position(100) < Position(100, 1) < Position(101)
    row = Row("user#u1", UserFeatures("u1"), marks={"s": "100", "t": "100:1"})
    assert (row.mark("s"), row.mark("t"), row.mark("x")) == (
        Position(100),
        Position(100, 1),
        BEFORE_ALL,
    )
