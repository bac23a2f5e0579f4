"""The offline store: events as Snappy Parquet on S3, registered as Glue partitions.

Layout (DESIGN.md, the same as a Firehose delivery stream writes)::

    s3://<bucket>/<prefix>dt=YYYY-MM-DD/hour=HH/<stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>.parquet

``dt`` and ``hour`` are the ARRIVAL time in the stream (UTC), not the event time, so replays and
late events never scatter into thousands of tiny files; the event time is the ``timestamp`` column.

Each object is written whole in one PutObject (it appears entirely or not at all), then its
partition is registered in Glue. The object's uuid is derived from the stream, shard and sequence
number of its first record, so a batch redelivered after a crash (same first record) overwrites
the object it wrote before instead of duplicating it.

Errors: a failed AWS call raises ``infra.errors.ServiceError`` (or ``ThrottledError``).
"""

from __future__ import annotations

import asyncio
import io
import types
import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from feature_store.transforms import Sequenced
from infra.apply import storage_descriptor
from infra.errors import ServiceError, translate
from producers.events import Event
from producers.schema import event_columns, from_row, to_row

FIREHOSE_VERSION = 1  # the "<n>" in Firehose object names: the delivery stream's version
GLUE_PARTITION_BATCH = 100  # BatchCreatePartition takes at most 100 partitions per call
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
}
_KEY_NAMESPACE = uuid.UUID("6f1d4c1e-3b7a-4f0e-9a51-7c2d5e8b9a10")  # streamrec lake object names

Partition = tuple[str, str]  # (dt, hour), e.g. ("2024-05-01", "09")


def _nullable(name: str) -> bool:
    """Whether the event model admits ``None`` for field ``name``."""
    annotation = Event.model_fields[name].annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return type(None) in typing.get_args(annotation)
    return False


def arrow_schema() -> pa.Schema:
    """The Arrow schema of a lake file, derived from the event model via ``event_columns``."""
    return pa.schema(
        [
            pa.field(name, _ARROW_TYPES[glue], nullable=_nullable(name))
            for name, glue in event_columns()
        ]
    )


EVENT_SCHEMA = arrow_schema()


def _utc(arrival_ms: int) -> datetime:
    return datetime.fromtimestamp(arrival_ms // 1000, tz=UTC)


def partition_of(arrival_ms: int) -> Partition:
    """``(dt, hour)`` of an arrival time in UTC milliseconds."""
    when = _utc(arrival_ms)
    return when.strftime("%Y-%m-%d"), when.strftime("%H")


def partition_prefix(prefix: str, partition: Partition) -> str:
    """The key prefix (folder) of a partition: ``<prefix>dt=YYYY-MM-DD/hour=HH/``."""
    dt, hour = partition
    return f"{prefix}dt={dt}/hour={hour}/"


def object_key(prefix: str, stream_name: str, arrival_ms: int, uuid: str) -> str:
    """The Firehose-style key of a file whose first record arrived at ``arrival_ms`` (UTC ms)."""
    stamp = _utc(arrival_ms).strftime("%Y-%m-%d-%H-%M-%S")
    name = f"{stream_name}-{FIREHOSE_VERSION}-{stamp}-{uuid}.parquet"
    return partition_prefix(prefix, partition_of(arrival_ms)) + name


def encode_parquet(events: Sequence[Event]) -> bytes:
    """One Snappy Parquet file holding ``events`` as lake rows, in order."""
    table = pa.Table.from_pylist([to_row(e) for e in events], schema=EVENT_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def decode_parquet(data: bytes) -> list[Event]:
    """The events of one lake file; the inverse of ``encode_parquet``."""
    return [from_row(row) for row in pq.read_table(pa.BufferReader(data)).to_pylist()]


@dataclass(frozen=True)
class LakeObject:
    """One Parquet object written to the lake."""

    key: str
    partition: Partition
    rows: int


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
    ) -> None:
        self._s3 = s3
        self._glue = glue
        self._bucket = bucket
        self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._database = database
        self._table = table
        self._stream = stream_name
        self._registered: set[Partition] = set()

    async def write_events(self, events: Sequence[Sequenced]) -> list[LakeObject]:
        """Write ``events`` as one object per arrival ``(dt, hour)``, then register partitions.

        Returns the objects written (none for no events). When this returns, every event is in
        S3 and every partition it touched is in Glue; on error, retrying the same events
        overwrites the same objects.
        """
        groups: dict[Partition, list[Sequenced]] = {}
        for s in events:
            groups.setdefault(partition_of(s.arrival_ms), []).append(s)
        written = await asyncio.gather(*(self._put(group) for group in groups.values()))
        await self._register([p for p in groups if p not in self._registered])
        return list(written)

    async def _put(self, group: list[Sequenced]) -> LakeObject:
        first = group[0]
        name = f"{self._stream}/{first.shard_id}/{first.sequence_number}"
        key = object_key(
            self._prefix, self._stream, first.arrival_ms, str(uuid.uuid5(_KEY_NAMESPACE, name))
        )
        body = encode_parquet([s.event for s in group])
        try:
            await self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/vnd.apache.parquet",
            )
        except ClientError as exc:
            raise translate("PutObject", exc) from exc
        return LakeObject(key, partition_of(first.arrival_ms), len(group))

    async def _register(self, partitions: list[Partition]) -> None:
        columns = tuple(event_columns())
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

    def partition_location(self, partition: Partition) -> str:
        """The S3 folder of a partition as registered in Glue: ``s3://<bucket>/<prefix>dt=../hour=../``."""
        return f"s3://{self._bucket}/{partition_prefix(self._prefix, partition)}"

    async def list_keys(self) -> list[str]:
        """Every Parquet object key under the prefix, in key order (all pages)."""
        keys: list[str] = []
        try:
            async for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix
            ):
                keys.extend(
                    o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")
                )
        except ClientError as exc:
            raise translate("ListObjectsV2", exc) from exc
        return sorted(keys)

    async def read_events(self) -> list[Event]:
        """Every event in the lake, object by object in key order, rows in file order."""
        events: list[Event] = []
        for key in await self.list_keys():
            try:
                response = await self._s3.get_object(Bucket=self._bucket, Key=key)
                async with response["Body"] as body:
                    data = await body.read()
            except ClientError as exc:
                raise translate("GetObject", exc) from exc
            events.extend(decode_parquet(data))
        return events

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
