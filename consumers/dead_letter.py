"""The dead-letter sink: records that cannot be decoded or validated, kept whole in S3.

One JSON object per record at
``s3://<bucket>/<prefix>dt=YYYY-MM-DD/<shard>-<sequence>.json`` (``dt`` from the arrival time,
UTC), holding the payload base64-encoded with its shard, sequence number, partition key, arrival
time, reason and attempts. A user record of a KPL-aggregated record also has its sub-sequence
number, in the document and in the key (``<shard>-<sequence>-<sub>.json``). The key depends only
on the record's place in the stream, so a redelivered poison record overwrites its own object:
sending is idempotent.

Errors: a failed PutObject raises ``infra.errors.ServiceError`` (or ``ThrottledError``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from infra.errors import translate

MAX_CONCURRENT_PUTS = 16


@dataclass(frozen=True)
class Poison:
    """A Kinesis record the runtime could not turn into an event, and why."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival_ms: int  # ApproximateArrivalTimestamp, UTC milliseconds
    reason: str
    attempts: int = 1
    sub_sequence: int | None = None  # index inside a KPL-aggregated record

    def to_json(self) -> bytes:
        """The dead-letter document: every field, the payload as ``data_base64``."""
        arrival = datetime.fromtimestamp(self.arrival_ms / 1000, tz=UTC)
        document = {
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
            "partition_key": self.partition_key,
            "arrival_ms": self.arrival_ms,
            "arrival_time": arrival.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "reason": self.reason,
            "attempts": self.attempts,
            "data_base64": base64.b64encode(self.data).decode("ascii"),
        }
        if self.sub_sequence is not None:
            document["sub_sequence"] = self.sub_sequence
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Poison:
        """The record a dead-letter document holds; the inverse of ``to_json``."""
        doc = json.loads(data)
        return cls(
            shard_id=doc["shard_id"],
            sequence_number=doc["sequence_number"],
            partition_key=doc["partition_key"],
            data=base64.b64decode(doc["data_base64"]),
            arrival_ms=doc["arrival_ms"],
            reason=doc["reason"],
            attempts=doc["attempts"],
            sub_sequence=doc.get("sub_sequence"),
        )


def dead_letter_key(prefix: str, poison: Poison) -> str:
    """``<prefix>dt=YYYY-MM-DD/<shard>-<sequence>[-<sub>].json``, ``dt`` from the arrival time
    (UTC), ``-<sub>`` for a user record of an aggregated record."""
    dt = datetime.fromtimestamp(poison.arrival_ms // 1000, tz=UTC).strftime("%Y-%m-%d")
    sub = "" if poison.sub_sequence is None else f"-{poison.sub_sequence}"
    return f"{prefix}dt={dt}/{poison.shard_id}-{poison.sequence_number}{sub}.json"


class DeadLetterSink:
    """Writes poison records under ``s3://<bucket>/<prefix>`` through an aiobotocore S3 client."""

    def __init__(self, s3: Any, *, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_PUTS)

    async def send(self, poison_records: Sequence[Poison]) -> list[str]:
        """Store every record, one object each; returns their keys. Durable when it returns."""
        return list(await asyncio.gather(*(self._put(p) for p in poison_records)))

    async def _put(self, poison: Poison) -> str:
        key = dead_letter_key(self._prefix, poison)
        async with self._limit:
            try:
                await self._s3.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=poison.to_json(),
                    ContentType="application/json",
                )
            except ClientError as exc:
                raise translate("PutObject", exc) from exc
        return key
