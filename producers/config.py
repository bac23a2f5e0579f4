"""The producers' settings: one frozen, validated object shared by the sync and async producer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from producers.ratelimit import SHARD_BYTES_PER_S, SHARD_RECORDS_PER_S
from producers.records import (
    HELD_OVERHEAD_BYTES,
    MAX_BYTES_PER_CALL,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_CALL,
)

OnFull = Literal["block", "raise"]


@dataclass(frozen=True)
class ProducerConfig:
    """How a producer batches, retries, buffers, paces and aggregates.

    Batching: a call carries at most ``max_batch_records`` and ``max_batch_bytes`` (never more
    than Kinesis's 500 and 5 MiB). A partial call goes out once its oldest event waited
    ``linger`` seconds (``None``: only on ``flush``/``close``, or when the buffer is half full).
    Retries: an entry is carried by at most ``max_attempts`` calls, waiting
    ``uniform(0, min(max_delay, base_delay * 2**(n-1)))`` before the n-th retry (full jitter).
    Buffer: at most ``buffer_events`` events and ``buffer_bytes`` bytes of memory held (each event
    counts its wire bytes plus ``records.HELD_OVERHEAD_BYTES``), whether queued, in
    flight or waiting to be retried. When full, ``put`` blocks up to ``put_timeout`` seconds
    (``None``: as long as it takes) with ``on_full="block"``, or raises ``Backpressure`` at once
    with ``on_full="raise"``. Pacing (``rate_limit``): per-shard token buckets at
    ``shard_records_per_s`` and ``shard_bytes_per_s``, over a shard map re-read every
    ``shard_map_ttl`` seconds. ``aggregate`` packs a shard's events into KPL-aggregated
    records of at most ``aggregate_max_bytes`` (off by default; every consumer here reads them).
    """

    max_batch_records: int = MAX_RECORDS_PER_CALL
    max_batch_bytes: int = MAX_BYTES_PER_CALL
    linger: float | None = 0.1
    max_attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 5.0
    buffer_events: int = 50_000
    buffer_bytes: int = 32 * 1024 * 1024
    on_full: OnFull = "block"
    put_timeout: float | None = 30.0
    rate_limit: bool = True
    shard_records_per_s: float = SHARD_RECORDS_PER_S
    shard_bytes_per_s: float = SHARD_BYTES_PER_S
    shard_map_ttl: float = 60.0
    aggregate: bool = False
    aggregate_max_bytes: int = 51_200  # the KPL's default AggregationMaxSize

    def __post_init__(self) -> None:
        _check(1 <= self.max_batch_records <= MAX_RECORDS_PER_CALL, "max_batch_records", "1..500")
        _check(1 <= self.max_batch_bytes <= MAX_BYTES_PER_CALL, "max_batch_bytes", "1..5 MiB")
        _check(self.linger is None or self.linger >= 0, "linger", "None or >= 0")
        _check(self.max_attempts >= 1, "max_attempts", ">= 1")
        _check(0 <= self.base_delay <= self.max_delay, "base_delay", "0..max_delay")
        _check(self.buffer_events >= 1, "buffer_events", ">= 1")
        room = MAX_RECORD_BYTES + HELD_OVERHEAD_BYTES  # the largest record must fit
        _check(self.buffer_bytes >= room, "buffer_bytes", f">= {room} (1 MiB and its overhead)")
        _check(self.on_full in ("block", "raise"), "on_full", "'block' or 'raise'")
        _check(self.put_timeout is None or self.put_timeout >= 0, "put_timeout", "None or >= 0")
        _check(self.shard_records_per_s > 0 < self.shard_bytes_per_s, "shard rates", "> 0")
        _check(0 < self.aggregate_max_bytes <= MAX_RECORD_BYTES, "aggregate_max_bytes", "<= 1 MiB")

    @classmethod
    def of(cls, config: ProducerConfig | None, overrides: dict[str, Any]) -> ProducerConfig:
        """``config`` (or the defaults) with keyword ``overrides`` applied."""
        base = config or cls()
        if not overrides:
            return base
        fields = {name: getattr(base, name) for name in cls.__dataclass_fields__}
        unknown = set(overrides) - set(fields)
        if unknown:
            raise TypeError(f"unknown producer option(s): {', '.join(sorted(unknown))}")
        return cls(**(fields | overrides))


def _check(ok: bool, name: str, allowed: str) -> None:
    if not ok:
        raise ValueError(f"producer option {name} must be {allowed}")
