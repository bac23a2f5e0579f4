"""The offline store on moto's S3 and Glue: Firehose layout, Snappy Parquet, Glue partitions."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from consumers.lander import ParquetLander
from consumers.processor import Batch
from feature_store.offline import OfflineStore
from feature_store.transforms import Sequenced
from infra.clients import async_client
from infra.settings import Settings
from producers.events import Event, EventType

HOUR_10 = int(datetime(2024, 5, 1, 10, 59, 58, tzinfo=UTC).timestamp() * 1000)
HOUR_11 = int(datetime(2024, 5, 1, 11, 0, 1, tzinfo=UTC).timestamp() * 1000)
EVENT_TIME = int(datetime(2024, 4, 30, 8, 0, 0, tzinfo=UTC).timestamp() * 1000)  # late events


def _event(n: int, **extra: object) -> Event:
    return Event.parse(
        {
            "event_id": f"e{n}",
            "user_id": "u1",
            "item_id": f"i{n}",
            "event_type": "view",
            "timestamp": EVENT_TIME + n,
            **extra,
        }
    )


def _sequenced(events: list[Event], arrivals: list[int], first_seq: int = 1) -> list[Sequenced]:
    return [
        Sequenced(e, "shardId-000000000000", str(first_seq + i), arrival)
        for i, (e, arrival) in enumerate(zip(events, arrivals, strict=True))
    ]


@pytest.fixture
async def clients(applied: Settings) -> AsyncIterator[tuple[object, object]]:
    async with async_client("s3", applied) as s3, async_client("glue", applied) as glue:
        yield s3, glue


@pytest.fixture
def store(applied: Settings, clients: tuple[object, object]) -> OfflineStore:
    s3, glue = clients
    return OfflineStore(
        s3,
        glue,
        bucket=applied.bucket,
        prefix=applied.events_prefix,
        database=applied.glue_database,
        table=applied.glue_events_table,
        stream_name=applied.stream_name,
    )


def _two_hours() -> list[Sequenced]:
    events = [
        _event(1, value=4.5, session_id="s1", context={"page": "home", "pos": 3, "ab": True}),
        _event(2),  # every optional unset: None columns
        Event.parse(
            {
                "event_id": "e3",
                "user_id": "u2",
                "item_id": "i3",
                "event_type": "rating",
                "value": 2.0,
                "timestamp": EVENT_TIME,
                "context": {"score": 0.25},
            }
        ),
    ]
    return _sequenced(events, [HOUR_10, HOUR_10 + 1500, HOUR_11])


async def test_events_spanning_two_hours_land_in_two_partitions(
    store: OfflineStore, applied: Settings, clients: tuple[object, object]
) -> None:
    s3, _ = clients
    sequenced = _two_hours()
    written = (await store.write_events(sequenced)).objects

    assert sorted((o.partition, o.rows) for o in written) == [
        (("2024-05-01", "10"), 2),
        (("2024-05-01", "11"), 1),
    ]
    keys = await store.list_keys()
    assert [o.key for o in sorted(written, key=lambda o: o.key)] == keys
    stream = applied.stream_name
    assert keys[0].startswith(f"events/dt=2024-05-01/hour=10/{stream}-1-2024-05-01-10-59-58-")
    assert keys[1].startswith(f"events/dt=2024-05-01/hour=11/{stream}-1-2024-05-01-11-00-01-")
    for key in keys:
        assert key.endswith(".parquet")
        body = await (await s3.get_object(Bucket=applied.bucket, Key=key))["Body"].read()
        metadata = pq.ParquetFile(io.BytesIO(body)).metadata
        assert metadata.row_group(0).column(0).compression == "SNAPPY"


async def test_events_read_back_equal_including_context_and_nulls(store: OfflineStore) -> None:
    sequenced = _two_hours()
    await store.write_events(sequenced)

    back = await store.read_events()

    assert back == [s.event for s in sequenced]  # key order is arrival order here
    assert back[0].context == {"page": "home", "pos": 3, "ab": True}
    assert back[0].event_type is EventType.VIEW
    assert (back[1].value, back[1].session_id, back[1].context) == (None, None, None)
    assert back[2].context == {"score": 0.25}


async def test_glue_lists_both_partitions_at_their_folders(
    store: OfflineStore, applied: Settings, clients: tuple[object, object]
) -> None:
    _, glue = clients
    await store.write_events(_two_hours())

    assert await store.list_partitions() == [("2024-05-01", "10"), ("2024-05-01", "11")]
    response = await glue.get_partitions(
        DatabaseName=applied.glue_database, TableName=applied.glue_events_table
    )
    locations = sorted(p["StorageDescriptor"]["Location"] for p in response["Partitions"])
    assert locations == [
        f"s3://{applied.bucket}/events/dt=2024-05-01/hour=10/",
        f"s3://{applied.bucket}/events/dt=2024-05-01/hour=11/",
    ]
    columns = response["Partitions"][0]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == list(Event.model_fields)


async def test_writing_an_hour_again_adds_an_object_and_keeps_one_partition(
    store: OfflineStore, applied: Settings, clients: tuple[object, object]
) -> None:
    s3, glue = clients
    await store.write_events(_sequenced([_event(1)], [HOUR_10], first_seq=1))
    await store.write_events(_sequenced([_event(2)], [HOUR_10 + 5], first_seq=2))
    # another process (a fresh store) finds the partition already in Glue: still no failure
    other = OfflineStore(
        s3,
        glue,
        bucket=applied.bucket,
        prefix=applied.events_prefix,
        database=applied.glue_database,
        table=applied.glue_events_table,
        stream_name=applied.stream_name,
    )
    await other.write_events(_sequenced([_event(3)], [HOUR_10 + 9], first_seq=3))

    assert await store.list_partitions() == [("2024-05-01", "10")]
    assert len(await store.list_keys()) == 3
    assert sorted(e.event_id for e in await store.read_events()) == ["e1", "e2", "e3"]


async def test_redelivered_batch_overwrites_its_object(store: OfflineStore) -> None:
    first = _sequenced([_event(1), _event(2)], [HOUR_10, HOUR_10 + 1])
    await store.write_events(first)
    # the same records again after a crash before the checkpoint, plus one more
    await store.write_events(_sequenced([_event(1), _event(2), _event(3)], [HOUR_10] * 3))

    assert len(await store.list_keys()) == 1
    assert [e.event_id for e in await store.read_events()] == ["e1", "e2", "e3"]


async def test_lander_counts_rows_and_objects(store: OfflineStore) -> None:
    lander = ParquetLander(store)
    await lander.initialize("shardId-000000000000")
    await lander.process_records(Batch("shardId-000000000000", _two_hours()))
    await lander.process_records(Batch("shardId-000000000000", []))

    assert (lander.rows_written, lander.objects_written) == (3, 2)
    assert len(await store.read_events()) == 3


async def _retype_value_column(applied: Settings, glue: object, glue_type: str) -> None:
    """Change the Glue table's ``value`` column type, as an analyst editing the table would."""
    table = (
        await glue.get_table(DatabaseName=applied.glue_database, Name=applied.glue_events_table)  # type: ignore[attr-defined]
    )["Table"]
    descriptor = table["StorageDescriptor"]
    for column in descriptor["Columns"]:
        if column["Name"] == "value":
            column["Type"] = glue_type
    await glue.update_table(  # type: ignore[attr-defined]
        DatabaseName=applied.glue_database,
        TableInput={
            "Name": table["Name"],
            "TableType": table["TableType"],
            "Parameters": table["Parameters"],
            "PartitionKeys": table["PartitionKeys"],
            "StorageDescriptor": descriptor,
        },
    )


async def test_records_that_do_not_fit_the_glue_schema_go_to_the_error_prefix(
    store: OfflineStore, applied: Settings, clients: tuple[object, object]
) -> None:
    s3, glue = clients
    await _retype_value_column(applied, glue, "bigint")
    sequenced = _sequenced(
        [_event(1, value=3.0), _event(2, value=4.5), _event(3)], [HOUR_10, HOUR_10 + 1, HOUR_11]
    )

    landed = await store.write_events(sequenced)

    assert (landed.rows, landed.failed) == (2, 1)
    assert sorted(e.event_id for e in await store.read_events()) == ["e1", "e3"]
    ((error,),) = [landed.errors]
    stream = applied.stream_name
    assert error.key.startswith(
        f"lake-errors/format-conversion-failed/2024/05/01/10/{stream}-1-2024-05-01-10-59-58-"
    )
    body = await (await s3.get_object(Bucket=applied.bucket, Key=error.key))["Body"].read()  # type: ignore[attr-defined]
    (line,) = body.decode().splitlines()
    document = json.loads(line)
    assert document["lastErrorCode"] == "TYPE_MISMATCH"
    assert "'value' (bigint)" in document["lastErrorMessage"]
    assert document["sequenceNumber"] == "2"
    assert Event.from_json(base64.b64decode(document["rawData"])) == sequenced[1].event
    # the Parquet takes the table's types: value is an integer column now
    (key10, _) = await store.list_keys()
    data = await (await s3.get_object(Bucket=applied.bucket, Key=key10))["Body"].read()  # type: ignore[attr-defined]
    assert str(pq.read_table(io.BytesIO(data)).schema.field("value").type) == "int64"


async def test_a_batch_that_fails_whole_writes_no_parquet_and_no_partition(
    store: OfflineStore, applied: Settings, clients: tuple[object, object]
) -> None:
    _, glue = clients
    await _retype_value_column(applied, glue, "tinyint")
    landed = await store.write_events(_sequenced([_event(1, value=300.0)], [HOUR_10]))

    assert (landed.rows, landed.failed, landed.objects) == (0, 1, [])
    assert await store.list_keys() == []
    assert await store.list_partitions() == []
