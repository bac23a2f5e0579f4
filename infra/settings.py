"""The one settings object, built once at the edge and passed down.

Every field can be set from the environment with the ``STREAMREC_`` prefix
(``STREAMREC_STREAM_NAME=...``). Endpoints are not settings of ours: botocore reads the standard
AWS variables itself (``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``), so the same
configuration works for the AWS CLI, Terraform and streamrec. ``endpoint_url`` exists only so the
embedded stack can point every client at the moto it started.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The standard variables botocore resolves natively; streamrec reads no other endpoint variables.
AWS_ENDPOINT_VARIABLES: frozenset[str] = frozenset(
    {
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_KINESIS",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_GLUE",
        "AWS_ENDPOINT_URL_STS",
    }
)
# Credentials and region variables the AWS SDKs read; listed so config checks can recognise them.
AWS_STANDARD_VARIABLES: frozenset[str] = AWS_ENDPOINT_VARIABLES | {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
}


class Settings(BaseSettings):
    """Names of the resources streamrec uses and how to reach them. Frozen: copy to change."""

    model_config = SettingsConfigDict(env_prefix="STREAMREC_", frozen=True, extra="ignore")

    region: str = Field("us-east-1", description="AWS region of every resource.")
    endpoint_url: str | None = Field(
        None, description="One endpoint for every service (the embedded stack sets it)."
    )
    service_endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="Per-service endpoints over endpoint_url: {'kinesis': kinesis-mock's URL}.",
    )
    stream_name: str = Field("streamrec-events", description="Kinesis stream of events.")
    stream_shards: int = Field(2, ge=1, le=500, description="Shards when the stream is created.")
    features_table: str = Field("streamrec-features", description="DynamoDB online features.")
    checkpoints_table: str = Field(
        "streamrec-checkpoints", description="DynamoDB checkpoints, one row per app and shard."
    )
    bucket: str = Field("streamrec-lake", description="S3 bucket of the offline lake.")
    events_prefix: str = Field("events/", description="S3 prefix of the event Parquet files.")
    lander: bool = Field(
        True,
        description="Run the Parquet lander in the consumers; off when a Firehose delivery "
        "stream writes the lake instead (infra render's LakeWriter=firehose sets it).",
    )
    models_prefix: str = Field("models/", description="S3 prefix of the model registry.")
    serving_model: str = Field(
        "itemknn", description="The registered model whose promoted version the worker serves."
    )
    content_model: str = Field(
        "content",
        description="The registered content model whose neighbours the worker serves for cold "
        "items (empty: none).",
    )
    promotion_margin: float = Field(
        0.01,
        ge=0,
        description="How much better (relative, on the validation metric) a new model version "
        "must be than the promoted one to replace it.",
    )
    model_poll_seconds: float = Field(
        30.0, gt=0, description="How often the worker looks for a newly promoted model version."
    )
    # Firehose buffers 1-128 MiB (64 MiB at least when it converts to Parquet) and 0-900 s
    # (default 300 s); locally a flush every few seconds keeps the lake fresh to look at.
    lake_buffer_bytes: int = Field(
        8 * 1024 * 1024,
        ge=0,
        description="The lander writes a shard's buffer once its events' JSON reaches this "
        "size (0: every batch is written before it is checkpointed).",
    )
    lake_buffer_seconds: float = Field(
        10.0,
        ge=0,
        description="... or once its oldest event was held this long (0: every batch).",
    )
    # a live shard's answers are small, and a feature row is written once per applied batch:
    # holding a shard's events across answers for a fraction of a second cuts the writes
    feature_buffer_events: int = Field(
        5_000,
        ge=0,
        description="The feature processor applies a shard's held events once this many are "
        "held (0: every batch is applied before it is checkpointed).",
    )
    feature_buffer_seconds: float = Field(
        0.25,
        ge=0,
        description="... or once the oldest was held this long (0: every batch): the bound "
        "it adds to the features' freshness.",
    )
    lake_errors_prefix: str = Field(
        "lake-errors/",
        description="S3 prefix (Firehose's ErrorOutputPrefix) of events that failed conversion "
        "to the Glue table's schema: <prefix>format-conversion-failed/YYYY/MM/DD/HH/.",
    )
    dead_letter_prefix: str = Field(
        "dead-letter/", description="S3 prefix for records that cannot be decoded or validated."
    )
    glue_database: str = Field("streamrec", description="Glue database of the lake.")
    glue_events_table: str = Field("events", description="Glue table over the event Parquet.")
    get_records_limit: int = Field(
        10_000, ge=1, le=10_000, description="Records per GetRecords call (Kinesis's maximum)."
    )
    app_name: str = Field("streamrec", description="Consumer application name (checkpoints).")
    worker_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}",
        description="Owner written on the embedded runner's leases (default host:pid); a "
        "restarted worker with the same id resumes its own leases at once.",
    )
    # 0.2 s: an event arriving on an idle shard waits at most this long to be read, at the 5
    # GetRecords/s per shard Kinesis allows a stream's readers together (another reader of the
    # same stream gets throttled answers, which the runner backs off from; raise it then). On
    # the embedded stack it took recommendation freshness p99 from 1.76 s (0.5 s) to 1.33 s
    # at 20 events/s (bench/e2e.py, 40 probes each). The KCL's default is 1 s.
    idle_interval: float = Field(
        0.2, ge=0, description="Seconds the runner waits after an empty GetRecords answer."
    )
    failover_time: float = Field(
        10.0, gt=0, description="Seconds a lease's counter must stand still to be taken over."
    )
    lease_renewal_interval: float | None = Field(
        None, gt=0, description="Seconds between lease renewals (default failover_time / 3)."
    )
    shard_sync_interval: float = Field(
        10.0, gt=0, description="Seconds between ListShards calls looking for new shards."
    )
    watchdog_timeout: float | None = Field(
        60.0, gt=0, description="Seconds without progress, records waiting, before a restart."
    )
    lag_log_interval: float = Field(
        30.0, gt=0, description="Seconds between the runner's per-shard lag log lines."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text (for a terminal) or one JSON object a line (the image "
        "sets json), with correlation ids either way.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="Lowest level logged (INFO shows the runner's lag lines)."
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address the consumer's Prometheus endpoint binds."
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the consumer's Prometheus endpoint (streamrec consume, the demo); "
        "unset or 0: not served. The worker serves its own on /metrics.",
    )
    redis_url: str | None = Field(
        None, description="Redis for the recommendation cache; process memory when unset."
    )
    api_host: str = Field("127.0.0.1", description="Address the recommender API binds.")
    api_port: int = Field(8080, ge=0, le=65535, description="Port of the recommender API.")
    api_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes of `streamrec serve` sharing the API's port (SO_REUSEPORT); one "
        "process serves on one core.",
    )
    cache_prefix: str = Field("streamrec:recs", description="Key prefix of the Redis cache.")
    cache_ttl_seconds: int = Field(
        60, ge=1, lt=7 * 24 * 3600, description="Lifetime of a cached recommendation."
    )
    near_cache_entries: int = Field(
        10_000,
        ge=0,
        description="Cached recommendation lists each worker also keeps in its own memory, "
        "dropped when Redis announces the user's features changed (0: read Redis every time).",
    )
    cache_timeout_seconds: float = Field(
        0.5,
        gt=0,
        le=30,
        description="How long a worker waits for one Redis call before it serves uncached "
        "(flagged degraded).",
    )
    cache_retry_after_seconds: float = Field(
        1.0,
        ge=0,
        le=300,
        description="After a Redis call failed, how long the worker serves uncached without "
        "trying Redis (0: try on every request).",
    )
    item_rows_max_age_seconds: float = Field(
        30.0,
        ge=0,
        lt=3600,
        description="How long a worker keeps an item's features it read for computing "
        "recommendations (0: read them for every computed answer; the user's row is always read).",
    )
    item_rows_entries: int = Field(
        10_000, ge=1, description="Item rows a worker keeps at most (least recently read go first)."
    )
    reads_in_flight: int = Field(
        2,
        ge=1,
        le=64,
        description="Feature reads of each kind (user rows, item rows) a worker has out at once; "
        "requests arriving meanwhile are read together in the next one (models/batching.py).",
    )
    recommend_deadline_seconds: float = Field(
        0.25,
        gt=0,
        description="How long a recommendation may wait for the online features before the "
        "worker answers with popular items, flagged as degraded.",
    )
    ingest_api_keys: SecretStr | None = Field(
        None,
        description="Comma-separated API keys accepted by POST /events; ingest is off when unset.",
    )
    # The KCL runtime (`streamrec consume --runtime kcl`, infra/kcl.py). Defaults suit AWS; the
    # tests shorten them so a failover takes seconds.
    kcl_worker_id: str | None = Field(
        None, description="KCL worker id (unique per daemon); host name and pid when unset."
    )
    kcl_failover_time_ms: int = Field(
        10_000, ge=100, description="A lease not renewed for this long is taken over."
    )
    kcl_lease_assignment_interval_ms: int | None = Field(
        None, ge=100, description="How often the KCL leader assigns leases; 2 x failover if unset."
    )
    kcl_shutdown_grace_ms: int = Field(
        20_000, ge=0, description="On SIGTERM, how long shards get to flush and checkpoint."
    )
    kcl_idle_time_between_reads_ms: int = Field(
        1_000, ge=1, description="Pause between GetRecords calls on a shard."
    )
    # KCL's default is 60 s, and its shard sync task sleeps that long after it ran: the first
    # start of an application (empty lease table) would wait a minute before reading anything.
    kcl_shard_sync_interval_ms: int = Field(
        10_000, ge=100, description="How often the KCL looks for new shards (ListShards)."
    )
    kcl_parent_shard_poll_interval_ms: int = Field(
        10_000, ge=100, description="How often a child shard checks its parents are done."
    )

    @property
    def ingest_keys(self) -> frozenset[str]:
        """The ingest API keys, blanks dropped; empty when HTTP ingest is off."""
        if self.ingest_api_keys is None:
            return frozenset()
        raw = self.ingest_api_keys.get_secret_value()
        return frozenset(key.strip() for key in raw.split(",") if key.strip())

    def with_endpoint(self, endpoint_url: str, **service_endpoints: str) -> Settings:
        """A copy whose clients all go to ``endpoint_url`` (an emulator), except the services
        named in ``service_endpoints`` (``kinesis=...``: the faithful stack's kinesis-mock)."""
        update = {"endpoint_url": endpoint_url, "service_endpoints": service_endpoints}
        return self.model_copy(update=update)

    def with_unique_names(self, label: str) -> Settings:
        """A copy whose stream, tables, bucket, Glue database, application and cache prefix are
        named ``<label>-<random>`` (``_`` in the database): resources no other run uses, for
        tests and benchmarks sharing one emulator or Redis. ``label``: lowercase letters,
        digits and hyphens."""
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", label):
            raise ValueError(f"label must be lowercase letters, digits and hyphens: {label!r}")
        name = f"{label}-{uuid.uuid4().hex[:10]}"
        update = {
            "stream_name": name,
            "features_table": f"{name}-features",
            "checkpoints_table": f"{name}-checkpoints",
            "bucket": name,
            "glue_database": name.replace("-", "_"),
            "app_name": name,
            "cache_prefix": f"{name}:recs",
        }
        return self.model_copy(update=update)

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint the settings name for ``service``; None: botocore's own resolution
        (``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL``, then AWS)."""
        return self.service_endpoints.get(service, self.endpoint_url)
