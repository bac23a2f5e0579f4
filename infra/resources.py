"""Resource definitions: the one source of truth for what streamrec needs on AWS.

Each definition is plain data derived from the settings (names, keys, prefixes) and, for a
deployment, from an environment (``infra.environments``: capacity, durability). ``infra.apply``
creates them on an endpoint, ``infra.diff`` compares an endpoint with them, and
``infra.cloudformation`` renders them as a template (docs/decisions/0015).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.environments import Environment, StreamMode
from infra.settings import Settings
from producers.schema import event_columns

PARTITION_KEYS: tuple[tuple[str, str], ...] = (("dt", "string"), ("hour", "string"))
FEATURES_TTL_ATTRIBUTE = "expires_at"  # epoch seconds; DynamoDB deletes the row some time after
# first day Athena's partition projection enumerates; the lake's dt is arrival time, so no
# partition is older than the first deployment
PROJECTION_START = "2024-01-01"


@dataclass(frozen=True)
class Stream:
    """The Kinesis stream of events."""

    name: str
    shards: int  # PROVISIONED: the shard count; ON_DEMAND: ignored (Kinesis scales it)
    mode: StreamMode = "PROVISIONED"
    retention_hours: int = 24


@dataclass(frozen=True)
class Table:
    """A DynamoDB table with a string hash key and on-demand billing."""

    name: str
    hash_key: str
    ttl_attribute: str | None = None  # DynamoDB Time to Live, enabled on this attribute
    point_in_time_recovery: bool = False


@dataclass(frozen=True)
class Bucket:
    """The S3 bucket of the offline lake, and the prefixes streamrec writes under."""

    name: str
    events_prefix: str = "events/"
    dead_letter_prefix: str = "dead-letter/"
    lake_errors_prefix: str = "lake-errors/"
    models_prefix: str = "models/"


@dataclass(frozen=True)
class GlueTable:
    """A Glue table over Hive-partitioned Snappy Parquet."""

    database: str
    name: str
    location: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...] = PARTITION_KEYS

    @property
    def parameters(self) -> dict[str, str]:
        """Table parameters: Snappy Parquet, and partition projection on ``dt``/``hour`` (the
        layout of DESIGN.md) so Athena needs no registered partitions; the lander registers
        them anyway for readers that list partitions (``streamrec sql``)."""
        location = self.location.rstrip("/")
        return {
            "classification": "parquet",
            "parquet.compression": "SNAPPY",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": f"{PROJECTION_START},NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
            "projection.hour.type": "integer",
            "projection.hour.range": "0,23",
            "projection.hour.digits": "2",
            "storage.location.template": location + "/dt=${dt}/hour=${hour}/",
        }


@dataclass(frozen=True)
class Resources:
    """Everything streamrec creates."""

    stream: Stream
    features: Table
    checkpoints: Table
    bucket: Bucket
    events_table: GlueTable

    @property
    def tables(self) -> tuple[Table, Table]:
        """The DynamoDB tables."""
        return (self.features, self.checkpoints)


def resources(settings: Settings, environment: Environment | None = None) -> Resources:
    """The resources the settings name; shaped for ``environment`` when one is given (else as
    locally: a provisioned stream of ``settings.stream_shards`` shards, no backups)."""
    if environment is None:
        stream = Stream(settings.stream_name, settings.stream_shards)
        pitr = False
    else:
        stream = Stream(
            settings.stream_name,
            environment.stream_shards,
            environment.stream_mode,
            environment.stream_retention_hours,
        )
        pitr = environment.point_in_time_recovery
    return Resources(
        stream=stream,
        features=Table(
            settings.features_table,
            hash_key="pk",
            ttl_attribute=FEATURES_TTL_ATTRIBUTE,
            point_in_time_recovery=pitr,
        ),
        checkpoints=Table(settings.checkpoints_table, hash_key="pk", point_in_time_recovery=pitr),
        bucket=Bucket(
            settings.bucket,
            events_prefix=settings.events_prefix,
            dead_letter_prefix=settings.dead_letter_prefix,
            lake_errors_prefix=settings.lake_errors_prefix,
            models_prefix=settings.models_prefix,
        ),
        events_table=GlueTable(
            database=settings.glue_database,
            name=settings.glue_events_table,
            location=f"s3://{settings.bucket}/{settings.events_prefix}",
            columns=tuple(event_columns()),
        ),
    )
