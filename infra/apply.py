"""Create the resources on whatever endpoints the settings name. Idempotent: what exists is kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from infra.clients import client
from infra.environments import Environment
from infra.resources import GlueTable, Resources, Stream, Table, resources
from infra.settings import Settings

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def apply(
    settings: Settings,
    log: Callable[[str], None] = lambda _: None,
    environment: Environment | None = None,
) -> Resources:
    """Create every resource that is missing and wait until the stream is ACTIVE.

    ``environment`` shapes the stream and the backups as ``streamrec infra render`` does
    (default: as locally, ``infra.resources.resources``)."""
    res = resources(settings, environment)
    kinesis, dynamodb = client("kinesis", settings), client("dynamodb", settings)
    s3, glue = client("s3", settings), client("glue", settings)

    _create(
        lambda: kinesis.create_stream(**stream_spec(res.stream)),
        "ResourceInUseException",
        f"stream {res.stream.name}",
        log,
    )
    for table in (res.features, res.checkpoints):
        _create(
            lambda t=table: dynamodb.create_table(**table_spec(t)),
            "ResourceInUseException",
            f"table {table.name}",
            log,
        )
    bucket_args: dict[str, Any] = {"Bucket": res.bucket.name}
    if settings.region != "us-east-1":
        bucket_args["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    _create(
        lambda: _create_bucket(s3, bucket_args),
        "BucketAlreadyOwnedByYou",
        f"bucket {res.bucket.name}",
        log,
    )
    _create(
        lambda: glue.create_database(DatabaseInput={"Name": res.events_table.database}),
        "AlreadyExistsException",
        f"glue database {res.events_table.database}",
        log,
    )
    _create(
        lambda: glue.create_table(**glue_table_spec(res.events_table)),
        "AlreadyExistsException",
        f"glue table {res.events_table.name}",
        log,
    )

    kinesis.get_waiter("stream_exists").wait(
        StreamName=res.stream.name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )
    for table in (res.features, res.checkpoints):
        dynamodb.get_waiter("table_exists").wait(
            TableName=table.name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
        )
        if table.ttl_attribute:
            _enable_ttl(dynamodb, table.name, table.ttl_attribute, log)
        if table.point_in_time_recovery and not pitr_enabled(dynamodb, table.name):
            dynamodb.update_continuous_backups(
                TableName=table.name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            log(f"enabled point-in-time recovery on {table.name}")
    return res


def stream_spec(stream: Stream) -> dict[str, Any]:
    """CreateStream arguments of ``stream``."""
    if stream.mode == "ON_DEMAND":
        return {"StreamName": stream.name, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}
    return {"StreamName": stream.name, "ShardCount": stream.shards}


def pitr_enabled(dynamodb: Any, table: str) -> bool:
    """Whether point-in-time recovery is on (or turning on) for ``table``."""
    backups = dynamodb.describe_continuous_backups(TableName=table)
    description = backups["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
    return description.get("PointInTimeRecoveryStatus") in ("ENABLED", "ENABLING")


def _enable_ttl(dynamodb: Any, table: str, attribute: str, log: Callable[[str], None]) -> None:
    """Turn on Time to Live unless it is on already (enabling it twice is an error)."""
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )
    log(f"enabled TTL on {table}.{attribute}")


def _create(
    call: Callable[[], Any], exists_code: str, what: str, log: Callable[[str], None]
) -> None:
    try:
        call()
        log(f"created {what}")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != exists_code:
            raise
        log(f"exists  {what}")


def _create_bucket(s3: Any, args: dict[str, Any]) -> None:
    # us-east-1 answers 200 to creating a bucket one already owns; ask first to log the truth
    try:
        s3.head_bucket(Bucket=args["Bucket"])
    except ClientError:
        s3.create_bucket(**args)
        return
    raise ClientError({"Error": {"Code": "BucketAlreadyOwnedByYou"}}, "CreateBucket")


def table_spec(table: Table) -> dict[str, Any]:
    """CreateTable arguments of ``table`` (also the template's table properties)."""
    return {
        "TableName": table.name,
        "KeySchema": [{"AttributeName": table.hash_key, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": table.hash_key, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def glue_table_spec(table: GlueTable) -> dict[str, Any]:
    """CreateTable arguments of ``table`` (its ``TableInput`` is also the template's)."""
    return {
        "DatabaseName": table.database,
        "TableInput": {
            "Name": table.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": table.parameters,
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in table.partition_keys],
            "StorageDescriptor": storage_descriptor(table.columns, table.location),
        },
    }


def storage_descriptor(columns: tuple[tuple[str, str], ...], location: str) -> dict[str, Any]:
    """Glue storage descriptor of Snappy Parquet at ``location`` (tables and partitions)."""
    return {
        "Columns": [{"Name": n, "Type": t} for n, t in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
        "Compressed": True,
    }
