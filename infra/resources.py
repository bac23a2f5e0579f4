"""Resource definitions: the one source of truth for what streamrec needs on AWS.

Each definition is plain data derived from the settings; ``infra.apply`` creates them on an
endpoint and (later) CloudFormation rendering reads the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.settings import Settings
from producers.schema import event_columns

PARTITION_KEYS: tuple[tuple[str, str], ...] = (("dt", "string"), ("hour", "string"))
FEATURES_TTL_ATTRIBUTE = "expires_at"  # epoch seconds; DynamoDB deletes the row some time after


@dataclass(frozen=True)
class Stream:
    """The Kinesis stream of events."""

    name: str
    shards: int


@dataclass(frozen=True)
class Table:
    """A DynamoDB table with a string hash key and on-demand billing."""

    name: str
    hash_key: str
    ttl_attribute: str | None = None  # DynamoDB Time to Live, enabled on this attribute


@dataclass(frozen=True)
class Bucket:
    """The S3 bucket of the offline lake."""

    name: str


@dataclass(frozen=True)
class GlueTable:
    """A Glue table over Hive-partitioned Snappy Parquet."""

    database: str
    name: str
    location: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...] = PARTITION_KEYS


@dataclass(frozen=True)
class Resources:
    """Everything streamrec creates."""

    stream: Stream
    features: Table
    checkpoints: Table
    bucket: Bucket
    events_table: GlueTable


def resources(settings: Settings) -> Resources:
    """The resources the settings name."""
    return Resources(
        stream=Stream(settings.stream_name, settings.stream_shards),
        features=Table(
            settings.features_table, hash_key="pk", ttl_attribute=FEATURES_TTL_ATTRIBUTE
        ),
        checkpoints=Table(settings.checkpoints_table, hash_key="pk"),
        bucket=Bucket(settings.bucket),
        events_table=GlueTable(
            database=settings.glue_database,
            name=settings.glue_events_table,
            location=f"s3://{settings.bucket}/{settings.events_prefix}",
            columns=tuple(event_columns()),
        ),
    )
