"""Record format conversion with a Glue schema (pure): what fits lands, misfits carry a reason."""

from __future__ import annotations

import pytest

from feature_store.conversion import (
    OUT_OF_RANGE,
    TYPE_MISMATCH,
    TableSchema,
    UnsupportedColumn,
    convert,
)
from feature_store.transforms import Sequenced
from producers.events import Event


def glue(*columns: tuple[str, str]) -> dict[str, object]:
    return {"StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in columns]}}


def sequenced(n: int, **extra: object) -> Sequenced:
    event = Event.parse(
        {
            "event_id": f"e{n}",
            "user_id": "u",
            "item_id": "i",
            "event_type": "view",
            "timestamp": 1_714_557_600_000,
            **extra,
        }
    )
    return Sequenced(event, "shardId-0", str(n), 0)


def test_values_of_the_wrong_type_fail_only_their_record() -> None:
    schema = TableSchema.from_glue(glue(("event_id", "string"), ("value", "bigint")))
    converted = convert(schema, [sequenced(1), sequenced(2, value=4.5), sequenced(3)])
    assert [s.event.event_id for s in converted.kept] == ["e1", "e3"]
    assert converted.table.column_names == ["event_id", "value"]
    ((failed, error),) = converted.failed
    assert failed.event.event_id == "e2" and error.code == TYPE_MISMATCH
    assert "'value' (bigint)" in str(error)


def test_out_of_range_and_unsupported_types_are_named() -> None:
    schema = TableSchema.from_glue(glue(("timestamp", "int")))
    ((_, error),) = convert(schema, [sequenced(1)]).failed
    assert error.code == OUT_OF_RANGE
    with pytest.raises(UnsupportedColumn, match=r"'context'.*map<string,string>"):
        TableSchema.from_glue(glue(("context", "map<string,string>")))
