"""The offline store: events as Snappy Parquet on S3, registered as Glue partitions.

The layout and the file format are in ``feature_store.lake``: ``dt``/``hour`` partitions of
ARRIVAL time, the event time a column. Readers of an event-time range therefore prune partitions
with a lateness bound (``read_range``).

Rows take the Glue table's schema (read once with GetTable), as Firehose's record format
conversion does (``feature_store.conversion``): an event whose values do not fit the table's
columns does not land; it goes, with the reason, to Firehose's error layout
``<errors_prefix>format-conversion-failed/YYYY/MM/DD/HH/`` (arrival hour, UTC) as one JSON line
per record, and the other events land.

Each object is written whole in one PutObject (it appears entirely or not at all: no partial
object survives a crash), then its partition is registered in Glue. The object's uuid is
derived from the stream, shard and sequence number of its first record, so a batch redelivered
after a crash (same first record) overwrites the object it wrote before instead of duplicating it.

Errors: a failed AWS call raises ``infra.errors.ServiceError`` (or ``ThrottledError``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from botocore.exceptions import ClientError

from feature_store.conversion import ConversionError, TableSchema, convert
from feature_store.lake import (
    EVENT_SCHEMA,
    Partition,
    arrival_window,
    decode_parquet,
    encode_table,
    error_key,
    object_key,
    partition_of,
    partition_of_key,
    partition_prefix,
)
from feature_store.transforms import Sequenced
from infra.apply import storage_descriptor
from infra.errors import ServiceError, translate
from producers.events import MAX_CLOCK_SKEW_MS, Event

__all__ = [
    "EVENT_SCHEMA",
    "LakeObject",
    "Landed",
    "OfflineStore",
    "Partition",
    "RangeRead",
    "object_key",
    "partition_of",
    "partition_prefix",
]

GLUE_PARTITION_BATCH = 100  # BatchCreatePartition takes at most 100 partitions per call
READ_CONCURRENCY = 16  # GetObject calls in flight while reading a range
_KEY_NAMESPACE = uuid.UUID("6f1d4c1e-3b7a-4f0e-9a51-7c2d5e8b9a10")  # streamrec lake object names


@dataclass(frozen=True)
class LakeObject:
    """One Parquet object written to the lake."""

    key: str
    partition: Partition
    rows: int


@dataclass(frozen=True)
class Landed:
    """What one ``write_events`` wrote: Parquet objects, and error objects of failed records."""

    objects: list[LakeObject]
    errors: list[LakeObject]  # JSON lines under the error prefix; ``rows`` = failed records

    @property
    def rows(self) -> int:
        """Rows that landed in Parquet."""
        return sum(o.rows for o in self.objects)

    @property
    def failed(self) -> int:
        """Records that failed conversion (in the error objects)."""
        return sum(o.rows for o in self.errors)


@dataclass(frozen=True)
class RangeRead:
    """The events of an event-time range, and how much of the lake was read to find them."""

    events: list[Event]  # event time in the range, by (timestamp, event_id), each event_id once
    partitions: int  # partitions (dt, hour) whose objects were read
    objects: int
    window: tuple[Partition, Partition] | None  # first and last partition read; None: all


class OfflineStore:
    """Event Parquet under ``s3://<bucket>/<prefix>`` and its Glue table, via aiobotocore clients.

    Partitions are registered at most once per instance (one instance per process): the set of
    registered ones is remembered, and a partition that already exists in Glue counts as done.
    """

    def __init__(
        self,
        s3: Any,
        glue: Any,
        *,
        bucket: str,
        prefix: str,
        database: str,
        table: str,
        stream_name: str,
        errors_prefix: str = "lake-errors/",
    ) -> None:
        self._s3 = s3
        self._glue = glue
        self._bucket = bucket
        self._prefix = _folder(prefix)
        self._errors_prefix = _folder(errors_prefix)
        self._database = database
        self._table = table
        self._stream = stream_name
        self._registered: set[Partition] = set()
        self._schema: TableSchema | None = None

    async def table_schema(self) -> TableSchema:
        """The Glue table's columns (GetTable), read once per instance: a column added to the
        table is written by the processes started after the change, as with Firehose's cached
        schema. Raises ``ServiceError`` (``EntityNotFoundException``: no table) or
        ``conversion.UnsupportedColumn``."""
        if self._schema is None:
            try:
                response = await self._glue.get_table(DatabaseName=self._database, Name=self._table)
            except ClientError as exc:
                raise translate("GetTable", exc) from exc
            self._schema = TableSchema.from_glue(response["Table"])
        return self._schema

    async def write_events(self, events: Sequence[Sequenced]) -> Landed:
        """Write ``events`` as one object per arrival ``(dt, hour)``, then register partitions.

        Events that fail conversion to the table's schema go to error objects instead. When
        this returns, every event is in S3 (as a row or as an error line) and every partition it
        touched is in Glue; on error, retrying the same events overwrites the same objects.
        """
        schema = await self.table_schema()
        groups: dict[Partition, list[Sequenced]] = {}
        for s in events:
            groups.setdefault(partition_of(s.arrival_ms), []).append(s)
        converted = [convert(schema, group) for group in groups.values()]
        puts = [
            self._put(group[0], c.table)
            for group, c in zip(groups.values(), converted, strict=True)
            if c.kept
        ]
        failed = [pair for c in converted for pair in c.failed]
        written, errors = await asyncio.gather(asyncio.gather(*puts), self._put_errors(failed))
        landed = {o.partition for o in written}
        await self._register(schema, [p for p in groups if p in landed - self._registered])
        return Landed(list(written), errors)

    async def _put(self, first: Sequenced, table: pa.Table) -> LakeObject:
        key = object_key(self._prefix, self._stream, first.arrival_ms, self._uuid(first))
        await self._put_object(
            "PutObject", key, encode_table(table), "application/vnd.apache.parquet"
        )
        return LakeObject(key, partition_of(first.arrival_ms), table.num_rows)

    async def _put_errors(
        self, failed: list[tuple[Sequenced, ConversionError]]
    ) -> list[LakeObject]:
        """One JSON-lines object per arrival hour of the failed records (Firehose's layout)."""
        groups: dict[Partition, list[tuple[Sequenced, ConversionError]]] = {}
        for pair in failed:
            groups.setdefault(partition_of(pair[0].arrival_ms), []).append(pair)
        written = []
        for partition, group in groups.items():
            first = group[0][0]
            key = error_key(self._errors_prefix, self._stream, first.arrival_ms, self._uuid(first))
            body = b"".join(self._error_line(s, error) for s, error in group)
            await self._put_object("PutObject", key, body, "application/x-ndjson")
            written.append(LakeObject(key, partition, len(group)))
        return written

    def _error_line(self, record: Sequenced, error: ConversionError) -> bytes:
        """A record that failed conversion, in the fields of Firehose's error records (plus
        ``shardId``); ``rawData`` is the event's wire JSON, base64-encoded."""
        document = {
            "attemptsMade": 1,
            "arrivalTimestamp": record.arrival_ms,
            "lastErrorCode": error.code,
            "lastErrorMessage": str(error),
            "rawData": base64.b64encode(record.event.to_json()).decode("ascii"),
            "shardId": record.shard_id,
            "sequenceNumber": record.sequence_number,
            "subSequenceNumber": record.sub_sequence,
            "dataCatalogTable": {"databaseName": self._database, "tableName": self._table},
        }
        return json.dumps(document, separators=(",", ":")).encode() + b"\n"

    def _uuid(self, first: Sequenced) -> str:
        """The object's uuid: from its first record's place in the stream, so a redelivery
        overwrites it."""
        name = f"{self._stream}/{first.shard_id}/{first.sequence_number}"
        if first.sub_sequence:
            name += f":{first.sub_sequence}"
        return str(uuid.uuid5(_KEY_NAMESPACE, name))

    async def _put_object(self, operation: str, key: str, body: bytes, content_type: str) -> None:
        try:
            await self._s3.put_object(
                Bucket=self._bucket, Key=key, Body=body, ContentType=content_type
            )
        except ClientError as exc:
            raise translate(operation, exc) from exc

    async def _register(self, schema: TableSchema, partitions: list[Partition]) -> None:
        columns = schema.glue_columns
        for i in range(0, len(partitions), GLUE_PARTITION_BATCH):
            chunk = partitions[i : i + GLUE_PARTITION_BATCH]
            inputs = [
                {
                    "Values": list(p),
                    "StorageDescriptor": storage_descriptor(columns, self.partition_location(p)),
                }
                for p in chunk
            ]
            try:
                response = await self._glue.batch_create_partition(
                    DatabaseName=self._database, TableName=self._table, PartitionInputList=inputs
                )
            except ClientError as exc:
                raise translate("BatchCreatePartition", exc) from exc
            failed = [
                e
                for e in response.get("Errors", [])
                if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
            ]
            if failed:
                detail = failed[0].get("ErrorDetail", {})
                raise ServiceError(
                    "BatchCreatePartition",
                    str(detail.get("ErrorCode", "Unknown")),
                    f"{failed[0].get('PartitionValues')}: {detail.get('ErrorMessage', '')}",
                )
            self._registered.update(chunk)

    @property
    def errors_prefix(self) -> str:
        """The S3 prefix of records that failed conversion (Firehose's ErrorOutputPrefix)."""
        return self._errors_prefix

    def partition_location(self, partition: Partition) -> str:
        """The S3 folder of a partition as registered in Glue: ``s3://<bucket>/<prefix>dt=../hour=../``."""
        return f"s3://{self._bucket}/{partition_prefix(self._prefix, partition)}"

    async def list_keys(self) -> list[str]:
        """Every Parquet object key under the prefix, in key order (all pages)."""
        return [key async for key in self._keys(None)]

    async def read_events(self) -> list[Event]:
        """Every event in the lake, object by object in key order, rows in file order."""
        events: list[Event] = []
        for key in await self.list_keys():
            events.extend(decode_parquet(await self._get(key)))
        return events

    async def read_range(
        self,
        start_ms: int,
        end_ms: int,
        max_lateness_ms: int | None,
        clock_skew_ms: int = MAX_CLOCK_SKEW_MS,
    ) -> RangeRead:
        """The events of event time in ``[start_ms, end_ms)``, sorted by (timestamp, event_id).

        Only the arrival partitions that can hold them are listed and read: those of
        ``arrival_window`` (an event arriving more than ``max_lateness_ms`` after its event time
        is missed); ``max_lateness_ms=None`` reads every partition. An event_id found twice (an
        event replayed into the stream lands again) is returned once, its earliest arrival.
        """
        window = arrival_window(start_ms, end_ms, max_lateness_ms, clock_skew_ms)
        keys = [key async for key in self._keys(window)]
        semaphore = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(key: str) -> list[Event]:
            async with semaphore:
                data = await self._get(key)
            return decode_parquet(data, (start_ms, end_ms))

        found: dict[str, Event] = {}
        for events in await asyncio.gather(*(read(key) for key in keys)):
            for event in events:
                found.setdefault(event.event_id, event)
        ordered = sorted(found.values(), key=lambda e: (e.timestamp, e.event_id))
        partitions = {partition_of_key(self._prefix, key) for key in keys}
        return RangeRead(ordered, len(partitions), len(keys), window)

    async def _keys(self, window: tuple[Partition, Partition] | None) -> AsyncIterator[str]:
        """Parquet keys in key (= arrival) order; only those of ``window``'s partitions if set.

        Keys sort by partition, so the listing starts after the first partition's prefix and
        stops past the last one: its cost follows the objects in the window, not the lake.
        """
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._prefix}
        if window is not None:
            kwargs["StartAfter"] = partition_prefix(self._prefix, window[0])
        try:
            async for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    partition = partition_of_key(self._prefix, key)
                    if window is not None and partition is not None:
                        if partition > window[1]:
                            return
                        if partition < window[0]:  # a server that ignores StartAfter
                            continue
                    if key.endswith(".parquet"):
                        yield key
        except ClientError as exc:
            raise translate("ListObjectsV2", exc) from exc

    async def _get(self, key: str) -> bytes:
        try:
            response = await self._s3.get_object(Bucket=self._bucket, Key=key)
            async with response["Body"] as body:
                return await body.read()
        except ClientError as exc:
            raise translate("GetObject", exc) from exc

    async def list_partitions(self) -> list[Partition]:
        """Every ``(dt, hour)`` registered in Glue, sorted (all pages)."""
        found: list[Partition] = []
        try:
            async for page in self._glue.get_paginator("get_partitions").paginate(
                DatabaseName=self._database, TableName=self._table
            ):
                found.extend((p["Values"][0], p["Values"][1]) for p in page.get("Partitions", []))
        except ClientError as exc:
            raise translate("GetPartitions", exc) from exc
        return sorted(found)


def _folder(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"
