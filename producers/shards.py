"""The shard map of a stream: which open shard a partition key lands on, as Kinesis routes it.

Kinesis hashes a partition key with MD5 into a 128-bit integer and writes the record to the open
shard whose ``HashKeyRange`` contains it. The map is read with ListShards (``load_shard_map``,
``load_shard_map_async``: the only I/O here); closed shards (those with an
``EndingSequenceNumber``, parents after a split or merge) take no writes and are left out.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

_MAX_CACHED_KEYS = 100_000


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key Kinesis derives from a partition key."""
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


class ShardMap:
    """Open shards by hash key range. ``shard_of`` is a binary search (memoised per key)."""

    def __init__(self, ranges: Iterable[tuple[str, int, int]]) -> None:
        ordered = sorted(ranges, key=lambda r: r[1])
        self._starts = [start for _, start, _ in ordered]
        self._ranges = ordered
        self._ids = frozenset(shard for shard, _, _ in ordered)
        self._cache: dict[str, str | None] = {}

    @classmethod
    def from_shards(cls, shards: Iterable[Mapping[str, Any]]) -> ShardMap:
        """The map of the open shards among ListShards' ``Shards`` entries."""
        return cls(
            (s["ShardId"], int(s["HashKeyRange"]["StartingHashKey"]), _end(s))
            for s in shards
            if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
        )

    def __contains__(self, shard_id: object) -> bool:
        return shard_id in self._ids

    def __len__(self) -> int:
        return len(self._ranges)

    @property
    def shard_ids(self) -> frozenset[str]:
        """The open shards."""
        return self._ids

    def shard_of(self, partition_key: str) -> str | None:
        """The shard that takes ``partition_key``; ``None`` if no open shard covers its hash."""
        shard = self._cache.get(partition_key, "")
        if shard != "":
            return shard
        value = hash_key(partition_key)
        index = bisect.bisect_right(self._starts, value) - 1
        found = None
        if index >= 0 and value <= self._ranges[index][2]:
            found = self._ranges[index][0]
        if len(self._cache) >= _MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[partition_key] = found
        return found


def _end(shard: Mapping[str, Any]) -> int:
    return int(shard["HashKeyRange"]["EndingHashKey"])


def load_shard_map(client: Any, stream_name: str) -> ShardMap:
    """Read the stream's shards with ListShards (every page) through a boto3 client."""
    shards: list[Mapping[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    while True:
        page = client.list_shards(**kwargs)
        shards += page["Shards"]
        if not page.get("NextToken"):
            return ShardMap.from_shards(shards)
        kwargs = {"NextToken": page["NextToken"]}


async def load_shard_map_async(client: Any, stream_name: str) -> ShardMap:
    """``load_shard_map`` through an aiobotocore client."""
    shards: list[Mapping[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    while True:
        page = await client.list_shards(**kwargs)
        shards += page["Shards"]
        if not page.get("NextToken"):
            return ShardMap.from_shards(shards)
        kwargs = {"NextToken": page["NextToken"]}
