"""An in-memory Kinesis stream for producer tests: fast, strict about limits, and recording.

``InMemoryKinesis`` answers ``put_records`` (routing each record to the open shard whose hash
key range holds the MD5 of its partition key, or its ``ExplicitHashKey``), ``list_shards`` and
``split_shard``. It enforces PutRecords' limits (500 entries, 5 MiB, 1 MiB per record with its
key) by raising ``ValidationException``, as Kinesis does, and keeps every record written in
``log``, in write order, so tests can check delivery, duplicates and per-key order. Pure logic
behind a client's surface; ``AsyncClient`` gives it (or any sync client) an async one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from producers.records import MAX_BYTES_PER_CALL, MAX_RECORD_BYTES, MAX_RECORDS_PER_CALL
from producers.shards import hash_key

_HASH_SPACE = 2**128


@dataclass(frozen=True)
class StoredRecord:
    """One record as the stream holds it."""

    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes


@dataclass
class _Shard:
    shard_id: str
    start: int
    end: int
    parent: str | None = None
    closed_at: str | None = None  # ending sequence number once split


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutRecords")


class InMemoryKinesis:
    """One stream of ``shards`` equal hash ranges; see the module docstring."""

    def __init__(self, stream_name: str = "events", shards: int = 4) -> None:
        self.stream_name = stream_name
        width = _HASH_SPACE // shards
        self._shards = [
            _Shard(
                _shard_id(i), i * width, _HASH_SPACE - 1 if i == shards - 1 else (i + 1) * width - 1
            )
            for i in range(shards)
        ]
        self.log: list[StoredRecord] = []
        self.calls = 0
        self._lock = threading.Lock()

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        """Write every entry (never a partial failure: wrap in a fault injector for those)."""
        self._check(StreamName, Records)
        answers = []
        with self._lock:
            self.calls += 1
            for entry in Records:
                key = int(entry["ExplicitHashKey"]) if "ExplicitHashKey" in entry else None
                shard = self._route(hash_key(entry["PartitionKey"]) if key is None else key)
                stored = StoredRecord(
                    shard.shard_id, str(len(self.log) + 1), entry["PartitionKey"], entry["Data"]
                )
                self.log.append(stored)
                answers.append(
                    {"ShardId": stored.shard_id, "SequenceNumber": stored.sequence_number}
                )
        return {"FailedRecordCount": 0, "Records": answers}

    def list_shards(self, *, StreamName: str | None = None, **_: Any) -> dict[str, Any]:
        """Every shard, closed ones with an ``EndingSequenceNumber`` (one page)."""
        with self._lock:
            return {"Shards": [_describe(s) for s in self._shards]}

    def split_shard(
        self,
        *,
        StreamName: str,
        ShardToSplit: str,
        NewStartingHashKey: str,
    ) -> dict[str, Any]:
        """Close ``ShardToSplit`` and open two children dividing its range at the new key."""
        with self._lock:
            parent = next(s for s in self._shards if s.shard_id == ShardToSplit)
            parent.closed_at = str(len(self.log))
            split, count = int(NewStartingHashKey), len(self._shards)
            self._shards += [
                _Shard(_shard_id(count), parent.start, split - 1, parent.shard_id),
                _Shard(_shard_id(count + 1), split, parent.end, parent.shard_id),
            ]
        return {}

    def _check(self, stream: str, records: list[dict[str, Any]]) -> None:
        if stream != self.stream_name:
            raise _error("ResourceNotFoundException", f"Stream {stream} not found")
        if not 1 <= len(records) <= MAX_RECORDS_PER_CALL:
            raise _error("ValidationException", f"{len(records)} records in one call")
        sizes = [len(r["Data"]) + len(r["PartitionKey"].encode()) for r in records]
        if max(sizes) > MAX_RECORD_BYTES:
            raise _error("ValidationException", f"a record of {max(sizes)} bytes")
        if sum(sizes) > MAX_BYTES_PER_CALL:
            raise _error("ValidationException", f"{sum(sizes)} bytes in one call")

    def _route(self, value: int) -> _Shard:
        return next(s for s in self._shards if s.closed_at is None and s.start <= value <= s.end)


def _shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


def _describe(shard: _Shard) -> dict[str, Any]:
    sequence_range = {"StartingSequenceNumber": "0"}
    if shard.closed_at is not None:
        sequence_range["EndingSequenceNumber"] = shard.closed_at
    described: dict[str, Any] = {
        "ShardId": shard.shard_id,
        "HashKeyRange": {"StartingHashKey": str(shard.start), "EndingHashKey": str(shard.end)},
        "SequenceNumberRange": sequence_range,
    }
    if shard.parent is not None:
        described["ParentShardId"] = shard.parent
    return described


class AsyncClient:
    """Any sync client with an async surface: every method becomes a coroutine function."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call
