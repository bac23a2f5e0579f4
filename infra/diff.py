"""What ``infra.apply`` would change on an endpoint: ``streamrec infra diff``.

Compares the definitions (``infra.resources``) with what the endpoint has, and lists

    + create   a resource apply would create
    ~ update   a setting apply would turn on (TTL, point-in-time recovery)
    ! differs  a resource that exists but not as defined; apply keeps what exists, so this needs
               a hand (or a new name): a key schema, the Glue columns, the stream's mode

An empty list means apply would do nothing. Read-only: only Describe/Get/Head calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from infra.apply import pitr_enabled
from infra.clients import client
from infra.environments import Environment
from infra.resources import GlueTable, Stream, Table, resources
from infra.settings import Settings

Action = Literal["create", "update", "differs"]
SYMBOLS: dict[str, str] = {"create": "+", "update": "~", "differs": "!"}
NOT_FOUND = frozenset(
    {"ResourceNotFoundException", "EntityNotFoundException", "404", "NoSuchBucket", "NotFound"}
)


@dataclass(frozen=True)
class Change:
    """One difference between the definitions and the endpoint."""

    action: Action
    resource: str  # "table streamrec-features"
    detail: str = ""

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{SYMBOLS[self.action]} {self.resource}{detail}"


def plan(settings: Settings, environment: Environment | None = None) -> list[Change]:
    """Every change ``apply(settings, environment=environment)`` would make, or should."""
    res = resources(settings, environment)
    changes = _stream(client("kinesis", settings), res.stream)
    dynamodb = client("dynamodb", settings)
    for table in res.tables:
        changes += _table(dynamodb, table)
    changes += _bucket(client("s3", settings), res.bucket.name)
    changes += _glue(client("glue", settings), res.events_table)
    return changes


def _missing(call: Any, **kwargs: Any) -> dict[str, Any] | None:
    """The call's answer, or None when the resource does not exist."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in NOT_FOUND:
            return None
        raise


def _stream(kinesis: Any, stream: Stream) -> list[Change]:
    what = f"stream {stream.name}"
    answer = _missing(kinesis.describe_stream_summary, StreamName=stream.name)
    if answer is None:
        size = "on demand" if stream.mode == "ON_DEMAND" else f"{stream.shards} shards"
        return [Change("create", what, size)]
    summary = answer["StreamDescriptionSummary"]
    mode = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    if mode != stream.mode:
        return [Change("differs", what, f"mode {mode}, defined {stream.mode}")]
    shards = summary.get("OpenShardCount")
    if stream.mode == "PROVISIONED" and shards != stream.shards:
        detail = f"{shards} open shards, defined {stream.shards} (apply does not reshard)"
        return [Change("differs", what, detail)]
    return []


def _table(dynamodb: Any, table: Table) -> list[Change]:
    what = f"table {table.name}"
    answer = _missing(dynamodb.describe_table, TableName=table.name)
    if answer is None:
        extras = [f"TTL on {table.ttl_attribute}"] if table.ttl_attribute else []
        extras += ["point-in-time recovery"] if table.point_in_time_recovery else []
        return [Change("create", what, ", ".join(extras))]
    description = answer["Table"]
    changes = []
    keys = [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]]
    if keys != [(table.hash_key, "HASH")]:
        changes.append(Change("differs", what, f"key {keys}, defined ({table.hash_key}, HASH)"))
    billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    if billing != "PAY_PER_REQUEST":
        changes.append(Change("differs", what, f"billing {billing}, defined PAY_PER_REQUEST"))
    if table.ttl_attribute:
        changes += _ttl(dynamodb, table.name, table.ttl_attribute)
    if table.point_in_time_recovery and not pitr_enabled(dynamodb, table.name):
        changes.append(Change("update", what, "enable point-in-time recovery"))
    return changes


def _ttl(dynamodb: Any, name: str, attribute: str) -> list[Change]:
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        return [Change("update", f"table {name}", f"enable TTL on {attribute}")]
    if ttl.get("AttributeName") != attribute:
        detail = f"TTL on {ttl.get('AttributeName')}, defined {attribute}"
        return [Change("differs", f"table {name}", detail)]
    return []


def _bucket(s3: Any, name: str) -> list[Change]:
    if _missing(s3.head_bucket, Bucket=name) is None:
        return [Change("create", f"bucket {name}")]
    return []


def _glue(glue: Any, table: GlueTable) -> list[Change]:
    what = f"glue table {table.database}.{table.name}"
    if _missing(glue.get_database, Name=table.database) is None:
        return [
            Change("create", f"glue database {table.database}"),
            Change("create", what, f"{len(table.columns)} columns"),
        ]
    answer = _missing(glue.get_table, DatabaseName=table.database, Name=table.name)
    if answer is None:
        return [Change("create", what, f"{len(table.columns)} columns")]
    found = answer["Table"]
    columns = _pairs(found.get("StorageDescriptor", {}).get("Columns", []))
    changes = [Change("differs", what, d) for d in column_differences(columns, table.columns)]
    partitions = _pairs(found.get("PartitionKeys", []))
    if partitions != table.partition_keys:
        detail = f"partition keys {_names(partitions)}, defined {_names(table.partition_keys)}"
        changes.append(Change("differs", what, detail))
    return changes


def _pairs(columns: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((c["Name"], c.get("Type", "")) for c in columns)


def _names(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{n} {t}" for n, t in pairs) or "none"


def column_differences(
    found: tuple[tuple[str, str], ...], defined: tuple[tuple[str, str], ...]
) -> list[str]:
    """Columns missing, unexpected or of another type, in the definition's order."""
    have, want = dict(found), dict(defined)
    out = [f"column {n} {t} missing" for n, t in defined if n not in have]
    out += [f"column {n} is {have[n]}, defined {t}" for n, t in defined if have.get(n, t) != t]
    out += [f"column {n} {t} not defined" for n, t in found if n not in want]
    return out
