"""The lake's object names: Firehose layout, partitioned by arrival time (UTC), not event time."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from feature_store.offline import EVENT_SCHEMA, object_key, partition_of, partition_prefix
from producers.schema import event_columns


def _ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)


def test_object_key_has_firehose_layout() -> None:
    key = object_key("events/", "clicks", _ms(2024, 5, 1, 9, 7, 3) + 456, "abc-123")
    assert key == "events/dt=2024-05-01/hour=09/clicks-1-2024-05-01-09-07-03-abc-123.parquet"


def test_partition_is_arrival_time_in_utc_not_event_time() -> None:
    event_time = _ms(2023, 12, 31, 23, 59, 59)  # a late event: never consulted for the key
    arrival = _ms(2024, 1, 1, 0, 0, 0)
    key = object_key("lake/events/", "s", arrival, "u")
    assert key.startswith("lake/events/dt=2024-01-01/hour=00/s-1-2024-01-01-00-00-00-")
    assert "2023" not in key
    assert partition_of(arrival) == ("2024-01-01", "00")
    assert partition_of(event_time) == ("2023-12-31", "23")


def test_hour_boundary_belongs_to_the_new_hour() -> None:
    assert partition_of(_ms(2024, 5, 1, 10, 59, 59) + 999) == ("2024-05-01", "10")
    assert partition_of(_ms(2024, 5, 1, 11, 0, 0)) == ("2024-05-01", "11")


def test_partition_prefix_is_the_folder_of_its_objects() -> None:
    arrival = _ms(2024, 2, 29, 23, 30, 0)
    folder = partition_prefix("events/", partition_of(arrival))
    assert folder == "events/dt=2024-02-29/hour=23/"
    assert object_key("events/", "s", arrival, "u").startswith(folder)


def test_arrow_schema_follows_the_glue_columns() -> None:
    arrow_types = {"string": pa.string(), "bigint": pa.int64(), "double": pa.float64()}
    assert [(f.name, f.type) for f in EVENT_SCHEMA] == [
        (name, arrow_types[glue]) for name, glue in event_columns()
    ]
    assert not EVENT_SCHEMA.field("event_id").nullable
    assert EVENT_SCHEMA.field("value").nullable
    assert EVENT_SCHEMA.field("context").nullable
