"""The lake's layout and file format, pure: object keys, partitions, and Parquet bytes.

Layout (DESIGN.md, the same as a Firehose delivery stream writes)::

    s3://<bucket>/<prefix>dt=YYYY-MM-DD/hour=HH/<stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>.parquet

``dt`` and ``hour`` are the ARRIVAL time in the stream (UTC), not the event time, so replays and
late events never scatter into thousands of tiny files; the event time is the ``timestamp`` column.
Keys sort in arrival order, so a range of partitions is a range of keys.
"""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from producers.events import MAX_CLOCK_SKEW_MS, Event
from producers.schema import event_columns, from_row, to_row

FIREHOSE_VERSION = 1  # the "<n>" in Firehose object names: the delivery stream's version
CONVERSION_FAILED = "format-conversion-failed"  # Firehose's error-output-type for these records
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
}

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


def error_key(errors_prefix: str, stream_name: str, arrival_ms: int, uuid: str) -> str:
    """Where records that failed conversion go, in Firehose's error layout:
    ``<errors_prefix>format-conversion-failed/YYYY/MM/DD/HH/<stream>-1-<stamp>-<uuid>``."""
    when = _utc(arrival_ms)
    folder = when.strftime(f"{errors_prefix}{CONVERSION_FAILED}/%Y/%m/%d/%H/")
    return f"{folder}{stream_name}-{FIREHOSE_VERSION}-{when.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid}"


def encode_parquet(events: Sequence[Event]) -> bytes:
    """One Snappy Parquet file holding ``events`` as lake rows (the event model's schema)."""
    return encode_table(pa.Table.from_pylist([to_row(e) for e in events], schema=EVENT_SCHEMA))


def encode_table(table: pa.Table) -> bytes:
    """One Snappy Parquet file holding ``table``."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def decode_parquet(data: bytes, time_range: tuple[int, int] | None = None) -> list[Event]:
    """The events of one lake file, in file order; the inverse of ``encode_parquet``.

    With ``time_range=(start_ms, end_ms)``, only the events whose event time is in
    ``[start_ms, end_ms)`` (filtered in Arrow, before rows become events).
    """
    table = pq.read_table(pa.BufferReader(data))
    if time_range is not None:
        timestamps = table.column("timestamp")
        table = table.filter(
            pc.and_(pc.greater_equal(timestamps, time_range[0]), pc.less(timestamps, time_range[1]))
        )
    return [from_row(row) for row in table.to_pylist()]


def partition_of_key(prefix: str, key: str) -> Partition | None:
    """The ``(dt, hour)`` of an object key under ``prefix``; None when not in the layout."""
    parts = key[len(prefix) :].split("/") if key.startswith(prefix) else []
    if len(parts) < 3 or not parts[0].startswith("dt=") or not parts[1].startswith("hour="):
        return None
    return parts[0].removeprefix("dt="), parts[1].removeprefix("hour=")


def arrival_window(
    start_ms: int,
    end_ms: int,
    max_lateness_ms: int | None,
    clock_skew_ms: int = MAX_CLOCK_SKEW_MS,
) -> tuple[Partition, Partition] | None:
    """The first and last arrival partitions that can hold events of event time in
    ``[start_ms, end_ms)``; None (every partition) when ``max_lateness_ms`` is None.

    An event arrives at most ``max_lateness_ms`` after its event time, and at most
    ``clock_skew_ms`` before it (a client clock running ahead; the contract refuses more), so
    the arrivals lie in ``[start_ms - clock_skew_ms, end_ms + max_lateness_ms)``.
    """
    if max_lateness_ms is None:
        return None
    if end_ms <= start_ms:
        raise ValueError(f"empty range: end {end_ms} is not after start {start_ms}")
    return partition_of(start_ms - clock_skew_ms), partition_of(end_ms + max_lateness_ms - 1)
