"""SQL over the lake, locally: DuckDB reading the Glue table's Parquet from S3 (``streamrec sql``).

The table is what Athena would query: the Glue table's columns (GetTable, the same schema the
lander writes with) plus its partition keys, over the files of the partitions registered in Glue
(GetPartitions). Files are read through pyarrow's S3 filesystem (so any S3 endpoint works, moto
included, without DuckDB's httpfs), as one Arrow dataset DuckDB scans lazily, pushing the query's
column selection and filters (``where dt = ...`` included) down to the Arrow scanner.

The view is named like the Glue table, and also ``<database>.<table>``::

    select event_type, count(*) from events where dt = '2024-05-01' group by 1

Errors::

    LakeUnavailable(StreamrecError)   the Glue table, its database or its bucket is not there
                                      (or the endpoint cannot be reached)
    duckdb.Error                      the query itself is wrong (raised as DuckDB reports it)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from botocore.exceptions import BotoCoreError, ClientError
from pyarrow.fs import FileSelector, FileSystem, FileType

from feature_store.conversion import TableSchema
from infra.errors import StreamrecError, error_code

_MISSING = {"EntityNotFoundException", "NoSuchBucket", "AccessDeniedException"}


class LakeUnavailable(StreamrecError):
    """The lake cannot be queried: the message says what is missing and how to create it."""


@dataclass(frozen=True)
class QueryResult:
    """A query's column names and rows (Python values, as DuckDB returns them)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def lake_dataset(glue: Any, filesystem: FileSystem, database: str, table: str) -> ds.Dataset:
    """The Glue table ``database.table`` as an Arrow dataset (columns, then partition keys).

    ``glue`` is a boto3 Glue client. Raises ``LakeUnavailable``.
    """
    glue_table = _get_table(glue, database, table)
    columns = TableSchema.from_glue(glue_table).arrow
    keys = [pa.field(k["Name"], pa.string()) for k in glue_table.get("PartitionKeys", [])]
    files: list[str] = []
    for location in _partition_locations(glue, database, table):
        files += _files_under(filesystem, location, f"{database}.{table}")
    return ds.dataset(
        files,
        schema=pa.schema([*columns, *keys]),
        format="parquet",
        filesystem=filesystem,
        partitioning=ds.partitioning(pa.schema(keys), flavor="hive") if keys else None,
        partition_base_dir=_path(glue_table["StorageDescriptor"]["Location"]),
    )


def connect(dataset: ds.Dataset, database: str, table: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose views ``table`` and ``database.table`` read ``dataset``."""
    connection = duckdb.connect()
    connection.register("lake_dataset", dataset)
    connection.execute(f"create schema {_quoted(database)}")
    for name in (_quoted(table), f"{_quoted(database)}.{_quoted(table)}"):
        connection.execute(f"create view {name} as select * from lake_dataset")
    return connection


def run_query(connection: duckdb.DuckDBPyConnection, sql: str) -> QueryResult:
    """Run ``sql``; its columns and every row. A statement without rows gives no columns."""
    cursor = connection.execute(sql)
    description: Sequence[Any] | None = cursor.description
    if description is None:
        return QueryResult([], [])
    return QueryResult([d[0] for d in description], list(cursor.fetchall()))


def _get_table(glue: Any, database: str, table: str) -> dict[str, Any]:
    try:
        return dict(glue.get_table(DatabaseName=database, Name=table)["Table"])
    except ClientError as exc:
        if error_code(exc) in _MISSING:
            raise LakeUnavailable(
                f"Glue table {database}.{table} not found ({error_code(exc)}): create it with "
                "`streamrec infra apply`, or name another with STREAMREC_GLUE_DATABASE and "
                "STREAMREC_GLUE_EVENTS_TABLE"
            ) from exc
        raise LakeUnavailable(f"GetTable {database}.{table} failed: {exc}") from exc
    except BotoCoreError as exc:  # no endpoint listening, no credentials, ...
        raise LakeUnavailable(f"cannot reach Glue for {database}.{table}: {exc}") from exc


def _partition_locations(glue: Any, database: str, table: str) -> list[str]:
    """The S3 folder of every partition registered in Glue (the only ones Athena reads)."""
    locations: list[str] = []
    try:
        for page in glue.get_paginator("get_partitions").paginate(
            DatabaseName=database, TableName=table
        ):
            locations += [p["StorageDescriptor"]["Location"] for p in page.get("Partitions", [])]
    except (ClientError, BotoCoreError) as exc:
        raise LakeUnavailable(f"GetPartitions {database}.{table} failed: {exc}") from exc
    return sorted(locations)


def _files_under(filesystem: FileSystem, location: str, what: str) -> list[str]:
    """The data files of one partition folder: Hive skips names starting with ``_`` or ``.``."""
    try:
        infos = filesystem.get_file_info(FileSelector(_path(location), allow_not_found=True))
    except OSError as exc:
        raise LakeUnavailable(f"cannot list {location} of {what}: {exc}") from exc
    return sorted(
        info.path
        for info in infos
        if info.type == FileType.File and not info.base_name.startswith(("_", "."))
    )


def _path(location: str) -> str:
    """``s3://bucket/prefix/`` as a pyarrow filesystem path: ``bucket/prefix``."""
    return location.removeprefix("s3://").removeprefix("s3a://").rstrip("/")


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
