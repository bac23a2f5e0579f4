"""The event contract: what is refused (naming the field), what survives the wire and the lake."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from producers.events import MAX_EVENT_BYTES, SCHEMA_VERSION, Event, EventType, InvalidEvent
from producers.schema import event_columns, from_row, to_row

NOW_MS = int(time.time() * 1000)


def valid(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "event_id": "e-1",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "click",
        "timestamp": NOW_MS - 1000,
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not ...}


def test_a_minimal_event_is_accepted_with_defaults() -> None:
    event = Event.parse(valid())
    assert event.event_type is EventType.CLICK
    assert event.value is None and event.context is None
    assert event.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_id": ...}, "event_id"),
        ({"user_id": ...}, "user_id"),
        ({"timestamp": ...}, "timestamp"),
        ({"user_id": 7}, "user_id"),
        ({"item_id": ""}, "item_id"),
        ({"item_id": "has space"}, "item_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"timestamp": "1700000000000"}, "timestamp"),
        ({"timestamp": 1.7e12}, "timestamp"),
        ({"event_type": "teleport"}, "event_type"),
        ({"event_type": 3}, "event_type"),
        ({"timestamp": 1_700_000_000}, "timestamp"),  # seconds, not milliseconds
        ({"timestamp": NOW_MS + 2 * 24 * 3600 * 1000}, "timestamp"),  # two days ahead
        ({"value": float("nan")}, "value"),
        ({"value": float("inf")}, "value"),
        ({"value": True}, "value"),
        ({"value": "4.5"}, "value"),
        ({"colour": "red"}, "colour"),
        ({"session_id": ""}, "session_id"),
        ({"schema_version": SCHEMA_VERSION + 1}, "schema_version"),
        ({"context": "page=home"}, "context"),
        ({"context": {f"k{i}": i for i in range(17)}}, "context"),
        ({"context": {"page": "x" * 257}}, "context"),
        ({"context": {"score": float("nan")}}, "context"),
        ({"context": {"nested": {"a": 1}}}, "context.nested"),
        ({"context": {"": 1}}, "context"),  # field reads "context..[key]"
    ],
)
def test_each_broken_field_is_refused_by_name(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        Event.parse(valid(**changes))
    assert caught.value.field.startswith(field), caught.value
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason


def test_a_missing_field_says_it_is_required() -> None:
    with pytest.raises(InvalidEvent) as caught:
        Event.parse(valid(item_id=...))
    assert (caught.value.field, caught.value.reason) == ("item_id", "is required")


def test_an_unknown_field_says_so() -> None:
    with pytest.raises(InvalidEvent) as caught:
        Event.parse(valid(colour="red"))
    assert caught.value.reason == "is not a field of the event"


def test_an_event_too_big_as_json_is_refused() -> None:
    # within every per-field limit, yet non-ASCII text grows sixfold as escaped JSON
    context = {f"k{i}": "é" * 256 for i in range(16)}
    with pytest.raises(InvalidEvent) as caught:
        Event.parse(valid(context=context))
    assert caught.value.field == "<event>"


def test_a_record_too_big_is_refused_before_decoding() -> None:
    record = json.dumps(valid(context={"pad": "x" * 200})).encode() + b" " * MAX_EVENT_BYTES
    with pytest.raises(InvalidEvent) as caught:
        Event.from_json(record)
    assert caught.value.field == "<record>"


@pytest.mark.parametrize("record", [b"not json", b"[1, 2]", b"\xff\xfe", b'"event"'])
def test_a_record_that_is_not_a_json_object_is_refused(record: bytes) -> None:
    with pytest.raises(InvalidEvent) as caught:
        Event.from_json(record)
    assert caught.value.field == "<record>"


def test_json_round_trip_keeps_every_field() -> None:
    event = Event.parse(
        valid(
            event_type="rating",
            value=4.5,
            session_id="s-9",
            context={"page": "home", "slot": 3, "ratio": 0.25, "ab": True},
        )
    )
    data = event.to_json()
    assert Event.from_json(data) == event
    assert Event.from_json(data.decode()) == event
    assert b" " not in data  # compact


def test_unset_optionals_are_left_out_of_the_json() -> None:
    decoded = json.loads(Event.parse(valid()).to_json())
    assert set(decoded) == {
        "event_id",
        "user_id",
        "item_id",
        "event_type",
        "timestamp",
        "schema_version",
    }
    assert decoded["event_type"] == "click"


def test_an_integer_value_becomes_a_float() -> None:
    assert Event.parse(valid(value=4)).value == 4.0


def test_the_partition_key_is_the_user() -> None:
    assert Event.parse(valid(user_id="user-42")).partition_key == "user-42"


def test_events_are_immutable() -> None:
    event = Event.parse(valid())
    with pytest.raises(ValueError):
        event.user_id = "someone-else"  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes",
    [{}, {"value": 3.5, "session_id": "s1", "context": {"b": 2, "a": "x", "c": False}}],
)
def test_a_lake_row_reads_back_to_the_same_event(changes: dict[str, Any]) -> None:
    event = Event.parse(valid(**changes))
    row = to_row(event)
    assert set(row) == {name for name, _ in event_columns()}
    assert from_row({**row, "dt": "2024-01-01", "hour": "05"}) == event


def test_context_is_stored_as_sorted_json_text() -> None:
    row = to_row(Event.parse(valid(context={"b": 2, "a": "x"})))
    assert row["context"] == '{"a":"x","b":2}'
    assert row["event_type"] == "click"


def test_event_columns_follow_the_model() -> None:
    assert event_columns() == [
        ("event_id", "string"),
        ("user_id", "string"),
        ("item_id", "string"),
        ("event_type", "string"),
        ("timestamp", "bigint"),
        ("value", "double"),
        ("session_id", "string"),
        ("context", "string"),
        ("schema_version", "bigint"),
    ]
