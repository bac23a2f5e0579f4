"""The dead-letter sink on moto's S3: one JSON object per poison record, idempotent keys."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from consumers.dead_letter import DeadLetterSink, Poison
from infra.clients import async_client
from infra.settings import Settings

ARRIVAL = int(datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC).timestamp() * 1000) + 250


@pytest.fixture
async def s3(applied: Settings) -> AsyncIterator[Any]:
    async with async_client("s3", applied) as client:
        yield client


async def _objects(s3: Any, settings: Settings) -> dict[str, dict[str, Any]]:
    listing = await s3.list_objects_v2(Bucket=settings.bucket, Prefix=settings.dead_letter_prefix)
    found = {}
    for obj in listing.get("Contents", []):
        response = await s3.get_object(Bucket=settings.bucket, Key=obj["Key"])
        found[obj["Key"]] = json.loads(await response["Body"].read())
    return found


def _poison(sequence: str, data: bytes, reason: str, attempts: int = 1) -> Poison:
    return Poison("shardId-000000000001", sequence, "u7", data, ARRIVAL, reason, attempts)


async def test_poison_records_land_with_payload_reason_and_shard(
    s3: Any, applied: Settings
) -> None:
    sink = DeadLetterSink(s3, bucket=applied.bucket, prefix=applied.dead_letter_prefix)
    binary = b"\xff\x00not json\x80"
    keys = await sink.send(
        [_poison("41", binary, "not JSON"), _poison("42", b'{"event_id":1}', "event_id: type")]
    )

    stored = await _objects(s3, applied)
    assert (
        sorted(stored)
        == sorted(keys)
        == [
            "dead-letter/dt=2024-05-01/shardId-000000000001-41.json",
            "dead-letter/dt=2024-05-01/shardId-000000000001-42.json",
        ]
    )
    doc = stored["dead-letter/dt=2024-05-01/shardId-000000000001-41.json"]
    assert base64.b64decode(doc["data_base64"]) == binary
    assert (doc["shard_id"], doc["sequence_number"], doc["partition_key"]) == (
        "shardId-000000000001",
        "41",
        "u7",
    )
    assert (doc["reason"], doc["attempts"], doc["arrival_ms"]) == ("not JSON", 1, ARRIVAL)
    assert doc["arrival_time"] == "2024-05-01T23:59:59.250Z"
    assert Poison.from_json(json.dumps(doc)) == _poison("41", binary, "not JSON")


async def test_resending_a_record_overwrites_its_object(s3: Any, applied: Settings) -> None:
    sink = DeadLetterSink(s3, bucket=applied.bucket, prefix=applied.dead_letter_prefix)
    await sink.send([_poison("7", b"garbage", "not JSON")])
    await sink.send([_poison("7", b"garbage", "not JSON (again)", attempts=2)])

    stored = await _objects(s3, applied)
    assert list(stored) == ["dead-letter/dt=2024-05-01/shardId-000000000001-7.json"]
    doc = stored["dead-letter/dt=2024-05-01/shardId-000000000001-7.json"]
    assert (doc["reason"], doc["attempts"]) == ("not JSON (again)", 2)


async def test_sending_nothing_writes_nothing(s3: Any, applied: Settings) -> None:
    sink = DeadLetterSink(s3, bucket=applied.bucket, prefix=applied.dead_letter_prefix)
    assert await sink.send([]) == []
    assert await _objects(s3, applied) == {}
