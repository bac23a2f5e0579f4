"""Reading a Kinesis stream back in tests: every event of every shard, from the start.

Records are decoded the way the consumers decode them (``consumers.runner.decode``), so
KPL-aggregated records yield their events.
"""

from __future__ import annotations

import time
from typing import Any

from consumers.runner import decode
from producers.events import Event


def read_shards(kinesis: Any, stream: str) -> dict[str, list[Event]]:
    """Every record of ``stream`` as events, by shard id, each shard in sequence order."""
    by_shard: dict[str, list[Event]] = {}
    for shard_id, records in read_records(kinesis, stream).items():
        decoded, poison = decode(shard_id, records)
        assert not poison, f"undecodable records in {stream}: {poison}"
        by_shard[shard_id] = [s.event for s in decoded]
    return by_shard


def read_stream(kinesis: Any, stream: str) -> list[Event]:
    """Every event of ``stream``, shard after shard."""
    return [e for events in read_shards(kinesis, stream).values() for e in events]


def read_records(kinesis: Any, stream: str) -> dict[str, list[dict[str, Any]]]:
    """Every raw GetRecords record of ``stream`` (poison included), by shard id, in order."""
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = by_shard.setdefault(shard["ShardId"], [])
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += page["Records"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return by_shard


def wait_active(kinesis: Any, stream: str, deadline_seconds: float = 30.0) -> None:
    """Poll until ``stream`` is ACTIVE again (after a reshard), failing past the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.02)  # polling, under the deadline
    raise AssertionError(f"stream {stream} not ACTIVE after {deadline_seconds}s")
