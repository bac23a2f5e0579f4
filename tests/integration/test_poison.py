"""Poison records through the embedded runner: 1% malformed records land in the dead-letter
prefix with their payloads, and every good record is applied."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from typing import Any

from infra.clients import client
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import pipeline

GOOD = 2_000
CHUNK = 100  # good events between two malformed records


def malformed(index: int) -> bytes:
    """The ``index``-th malformed payload: not JSON, missing fields, oversized, wrong types."""
    valid: dict[str, Any] = {
        "event_id": f"bad-{index}",
        "user_id": f"u-bad-{index}",
        "item_id": "i1",
        "event_type": "view",
        "timestamp": 1_700_000_000_000,
    }
    kinds = [
        b"\xff\xfenot json at all",
        json.dumps({"event_id": f"bad-{index}", "user_id": "u"}).encode(),  # fields missing
        json.dumps({**valid, "context": {"pad": "x" * 9_000}}).encode(),  # > 8 KiB
        json.dumps({**valid, "timestamp": "yesterday"}).encode(),  # wrong type
        json.dumps({**valid, "user_id": 42}).encode(),  # wrong type
    ]
    return kinds[index % len(kinds)]


async def test_malformed_records_are_dead_lettered_and_good_ones_applied(
    applied: Settings,
) -> None:
    events = synthetic_events(GOOD, users=50, items=120, seed=21)
    kinesis = client("kinesis", applied)
    bad: dict[tuple[str, str], bytes] = {}  # (shard, sequence number) -> payload
    with EventProducer(kinesis, applied.stream_name) as producer:
        for index, start in enumerate(range(0, GOOD, CHUNK)):
            producer.put_many(events[start : start + CHUNK])
            producer.flush()
            payload = malformed(index)
            put = kinesis.put_record(
                StreamName=applied.stream_name, Data=payload, PartitionKey=f"u-bad-{index}"
            )
            bad[(put["ShardId"], put["SequenceNumber"])] = payload
    assert len(bad) == GOOD // CHUNK

    async with pipeline(applied) as p:
        await asyncio.wait_for(p.runner.run(until_caught_up=True), 120)
        assert (p.runner.stats.events, p.runner.stats.poison) == (GOOD, len(bad))

        items = sorted({e.item_id for e in events})
        stored = {f.item_id: f.total for f in await p.online.items(items) if f}
        assert stored == dict(Counter(e.item_id for e in events))
        landed = await p.offline.read_events()
        assert sorted(e.event_id for e in landed) == sorted(e.event_id for e in events)

        documents = await _dead_letters(p.clients.s3, applied)
    assert set(documents) == set(bad)
    for place, doc in documents.items():
        assert base64.b64decode(doc["data_base64"]) == bad[place]
        assert doc["reason"].startswith("invalid event: ")
        assert doc["attempts"] == 1
        assert doc["partition_key"].startswith("u-bad-")


async def _dead_letters(s3: Any, settings: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    """Every dead-letter document by (shard, sequence number)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    paginator = s3.get_paginator("list_objects_v2")
    async for page in paginator.paginate(
        Bucket=settings.bucket, Prefix=settings.dead_letter_prefix
    ):
        for obj in page.get("Contents", []):
            response = await s3.get_object(Bucket=settings.bucket, Key=obj["Key"])
            doc = json.loads(await response["Body"].read())
            found[(doc["shard_id"], doc["sequence_number"])] = doc
    return found
