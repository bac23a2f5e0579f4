"""The deployment environments (dev, staging, prod) as plain data, in this one place.

Names of resources are not here: they come from the settings (``STREAMREC_*``), as for
``streamrec infra apply``, so a deployed process and the template agree on them. This module
holds only what differs between environments: capacity, retention, durability, schedules and
alarm thresholds. ``streamrec infra render --env NAME`` reads it (docs/decisions/0015).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StreamMode = Literal["ON_DEMAND", "PROVISIONED"]


@dataclass(frozen=True)
class Service:
    """Size of one ECS Fargate service (or scheduled task): tasks, vCPU units, MiB."""

    count: int
    cpu: int  # 256 = 0.25 vCPU; Fargate accepts fixed cpu/memory pairs
    memory: int


@dataclass(frozen=True)
class Environment:
    """What one environment's stack is made of, besides the names the settings give."""

    name: str
    stream_mode: StreamMode
    stream_shards: int  # PROVISIONED only; ON_DEMAND scales on its own
    stream_retention_hours: int
    point_in_time_recovery: bool
    retain_data: bool  # DeletionPolicy Retain on the stream, tables and bucket
    dead_letter_expiration_days: int
    lake_errors_expiration_days: int
    log_retention_days: int
    cache_node_type: str
    cache_replicas: int  # read replicas besides the primary; > 0 turns on automatic failover
    consumers: Service
    worker: Service
    trainer: Service
    # EventBridge schedule of `streamrec train`; the rule is DISABLED when None
    retrain_schedule: str | None
    firehose_buffer_mib: int  # 64-128: Firehose's format conversion needs at least 64
    firehose_buffer_seconds: int
    iterator_age_alarm_ms: int  # GetRecords.IteratorAgeMilliseconds: every minute of 5 above it
    dead_letter_alarm: int  # dead-letter objects written in a minute
    worker_5xx_alarm: int  # worker 5xx answers in a minute
    container_insights: bool


ENVIRONMENTS: dict[str, Environment] = {
    # dev: pay per use, nothing kept, the smallest of everything
    "dev": Environment(
        name="dev",
        stream_mode="ON_DEMAND",
        stream_shards=0,
        stream_retention_hours=24,
        point_in_time_recovery=False,
        retain_data=False,
        dead_letter_expiration_days=7,
        lake_errors_expiration_days=7,
        log_retention_days=7,
        cache_node_type="cache.t4g.micro",
        cache_replicas=0,
        consumers=Service(count=1, cpu=512, memory=1024),
        worker=Service(count=1, cpu=256, memory=512),
        trainer=Service(count=1, cpu=1024, memory=4096),
        retrain_schedule=None,
        firehose_buffer_mib=64,
        firehose_buffer_seconds=60,
        iterator_age_alarm_ms=15 * 60_000,
        dead_letter_alarm=100,
        worker_5xx_alarm=50,
        container_insights=False,
    ),
    # staging: prod's shape at a quarter of its size, retraining daily to exercise it
    "staging": Environment(
        name="staging",
        stream_mode="PROVISIONED",
        stream_shards=2,
        stream_retention_hours=48,
        point_in_time_recovery=False,
        retain_data=False,
        dead_letter_expiration_days=14,
        lake_errors_expiration_days=14,
        log_retention_days=14,
        cache_node_type="cache.t4g.small",
        cache_replicas=1,
        consumers=Service(count=2, cpu=512, memory=1024),
        worker=Service(count=2, cpu=512, memory=1024),
        trainer=Service(count=1, cpu=2048, memory=8192),
        retrain_schedule="cron(0 4 * * ? *)",
        firehose_buffer_mib=64,
        firehose_buffer_seconds=300,
        iterator_age_alarm_ms=5 * 60_000,
        dead_letter_alarm=10,
        worker_5xx_alarm=10,
        container_insights=True,
    ),
    # prod: provisioned shards (steady load costs less than on-demand), data kept, weekly retrain
    "prod": Environment(
        name="prod",
        stream_mode="PROVISIONED",
        stream_shards=8,
        stream_retention_hours=168,
        point_in_time_recovery=True,
        retain_data=True,
        dead_letter_expiration_days=30,
        lake_errors_expiration_days=30,
        log_retention_days=30,
        cache_node_type="cache.r7g.large",
        cache_replicas=1,
        consumers=Service(count=4, cpu=1024, memory=2048),
        worker=Service(count=3, cpu=1024, memory=2048),
        trainer=Service(count=1, cpu=4096, memory=16384),
        retrain_schedule="cron(0 3 ? * SUN *)",
        firehose_buffer_mib=128,
        firehose_buffer_seconds=300,
        iterator_age_alarm_ms=60_000,
        dead_letter_alarm=1,
        worker_5xx_alarm=5,
        container_insights=True,
    ),
}


def environment(name: str) -> Environment:
    """The environment called ``name``; a ValueError naming the known ones otherwise."""
    try:
        return ENVIRONMENTS[name]
    except KeyError:
        known = ", ".join(ENVIRONMENTS)
        raise ValueError(f"unknown environment {name!r}: expected one of {known}") from None


def markdown_table() -> str:
    """The environments as the README's table (a test keeps the README equal to it)."""
    rows = [
        (
            "stream",
            lambda e: "on demand" if e.stream_mode == "ON_DEMAND" else f"{e.stream_shards} shards",
        ),
        ("stream retention", lambda e: f"{e.stream_retention_hours} h"),
        ("point-in-time recovery", lambda e: "yes" if e.point_in_time_recovery else "no"),
        (
            "stream, tables, bucket on stack deletion",
            lambda e: "kept" if e.retain_data else "deleted (bucket: if empty)",
        ),
        ("dead letters expire after", lambda e: f"{e.dead_letter_expiration_days} d"),
        ("Redis", lambda e: f"{e.cache_node_type} x{1 + e.cache_replicas}"),
        ("consumer tasks (vCPU, GiB)", lambda e: _size(e.consumers)),
        ("worker tasks (vCPU, GiB)", lambda e: _size(e.worker)),
        ("retraining", lambda e: f"`{e.retrain_schedule}`" if e.retrain_schedule else "by hand"),
        (
            "Firehose buffer",
            lambda e: f"{e.firehose_buffer_mib} MiB / {e.firehose_buffer_seconds} s",
        ),
        ("iterator age alarm", lambda e: f"{e.iterator_age_alarm_ms // 1000} s"),
    ]
    envs = list(ENVIRONMENTS.values())
    lines = ["| | " + " | ".join(e.name for e in envs) + " |", "|---" * (len(envs) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cell(e) for e in envs) + " |" for label, cell in rows]
    return "\n".join(lines)


def _size(service: Service) -> str:
    return f"{service.count} ({service.cpu / 1024:g}, {service.memory / 1024:g})"
