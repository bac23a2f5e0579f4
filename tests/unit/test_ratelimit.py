"""Shard maps, token buckets and per-shard pacing, on an injected clock."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from producers.config import ProducerConfig
from producers.core import ProducerCore
from producers.ratelimit import ShardRateLimiter, TokenBucket
from producers.records import Record
from producers.shards import ShardMap, hash_key, load_shard_map
from producers.testing import InMemoryKinesis

HALF = 2**127


def shard(shard_id: str, start: int, end: int, closed: bool = False) -> dict[str, Any]:
    numbers = {"StartingSequenceNumber": "1"} | ({"EndingSequenceNumber": "9"} if closed else {})
    return {
        "ShardId": shard_id,
        "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)},
        "SequenceNumberRange": numbers,
    }


def test_hash_key_is_the_md5_of_the_partition_key_as_a_128_bit_integer() -> None:
    assert hash_key("user-1") == int(hashlib.md5(b"user-1").hexdigest(), 16)
    assert 0 <= hash_key("é") < 2**128


def test_a_key_goes_to_the_open_shard_whose_range_holds_its_hash() -> None:
    shards = [
        shard("a", 0, HALF - 1),
        shard("b", HALF, 2**128 - 1, closed=True),  # the parent of c and d
        shard("c", HALF, HALF + 2**126 - 1),
        shard("d", HALF + 2**126, 2**128 - 1),
    ]
    shard_map = ShardMap.from_shards(shards)
    assert shard_map.shard_ids == {"a", "c", "d"} and "b" not in shard_map
    for key in (f"user-{i}" for i in range(200)):
        value = hash_key(key)
        expected = "a" if value < HALF else "c" if value < HALF + 2**126 else "d"
        assert shard_map.shard_of(key) == expected
    assert ShardMap([("a", 0, 10)]).shard_of("user-1") is None  # a hash no shard covers


def test_load_shard_map_reads_list_shards() -> None:
    stream = InMemoryKinesis("s", shards=3)
    shard_map = load_shard_map(stream, "s")
    assert len(shard_map) == 3
    answer = stream.put_records(StreamName="s", Records=[{"Data": b"x", "PartitionKey": "u7"}])
    assert shard_map.shard_of("u7") == answer["Records"][0]["ShardId"]


def test_a_token_bucket_refills_at_its_rate_up_to_its_capacity() -> None:
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert bucket.can_take(5, 0.0)
    bucket.take(5)
    assert not bucket.can_take(1, 0.0)
    assert bucket.ready_at(1, 0.0) == pytest.approx(0.1)
    assert bucket.ready_at(3, 0.1) == pytest.approx(0.3)
    assert bucket.can_take(1, 0.1) and not bucket.can_take(2, 0.1)
    assert bucket.can_take(50, 100.0)  # capped at 5 saved; more than that needs a full bucket
    bucket.take(3)
    assert not bucket.can_take(5, 100.0) and bucket.can_take(2, 100.0)


def test_the_limiter_pays_records_and_bytes_per_shard() -> None:
    limiter = ShardRateLimiter(records_per_s=1000, bytes_per_s=1024 * 1024)
    assert limiter.try_take("a", 1000, 10, 0.0)
    assert not limiter.try_take("a", 1, 10, 0.0)  # out of records
    assert limiter.try_take("b", 1, 1024 * 1024, 0.0)  # another shard, its own buckets
    assert not limiter.try_take("b", 1, 1, 0.0)  # out of bytes
    assert limiter.ready_at("a", 1, 10, 0.0) == pytest.approx(0.001)
    assert limiter.resume_at("a", 1, 10, 0.0) == pytest.approx(0.1)  # a tenth of a second's worth
    assert limiter.try_take("a", 100, 10, 0.1)


def test_the_shard_map_is_refreshed_periodically_and_when_a_shard_is_unknown() -> None:
    limiter = ShardRateLimiter(refresh_interval=60.0)
    assert limiter.refresh_due(0.0) and limiter.shard_of("u1") is None
    limiter.update(ShardMap([("a", 0, 2**128 - 1)]), 0.0)
    assert not limiter.refresh_due(59.0) and limiter.refresh_due(60.0)
    assert limiter.shard_of("u1") == "a"
    limiter.saw_shard("a")
    assert not limiter.refresh_due(1.0)
    limiter.saw_shard("shardId-000000000009")  # Kinesis wrote where the map has no shard
    assert limiter.refresh_due(1.0)
    limiter.refresh_failed(1.0)
    assert not limiter.refresh_due(2.0) and limiter.refresh_due(61.0)


def paced_core(stream: InMemoryKinesis, **options: Any) -> ProducerCore:
    config = ProducerConfig(buffer_events=100_000, **options)
    limiter = ShardRateLimiter(config.shard_records_per_s, config.shard_bytes_per_s, 60.0)
    c = ProducerCore(config, lambda: 0.5, limiter)
    c.update_shard_map(load_shard_map(stream, stream.stream_name), 0.0)
    return c


def keys_on(stream: InMemoryKinesis, shard_id: str, count: int) -> list[str]:
    shard_map = load_shard_map(stream, stream.stream_name)
    keys = (f"user-{i}" for i in range(100_000))
    return [k for k in keys if shard_map.shard_of(k) == shard_id][:count]


def test_a_hot_shard_is_paced_at_1000_records_per_second_without_holding_up_others() -> None:
    stream = InMemoryKinesis("s", shards=2)
    hot, cold = (
        keys_on(stream, "shardId-000000000000", 3000),
        keys_on(stream, "shardId-000000000001", 5),
    )
    c = paced_core(stream)
    for i, key in enumerate(hot):
        c.add(Record(f"h{i}", key, b"{}"), 0.0)
    c.flush_through()
    now, sent_hot, cold_sent_at = 0.0, 0, None
    while not c.idle:
        if now >= 0.5 and cold_sent_at is None and len(cold) == 5:
            for i, key in enumerate(cold):
                c.add(Record(f"c{i}", key, b"{}"), now)
            c.flush_through()
            cold.clear()
        batch = c.next_batch(now)
        if batch is None:
            now = c.next_wakeup(now) or now + 0.5
            continue
        sent_hot += sum(1 for e in batch.entries if e.partition_key in hot)
        assert sent_hot <= 1000 + 1000 * now + 1e-6, "never above the shard's rate"
        if any(
            e.partition_key.startswith("user") and e.partition_key not in hot for e in batch.entries
        ):
            cold_sent_at = now
        c.on_response(batch, stream.put_records(**batch.request("s")), now, now)
    assert now == pytest.approx(2.0, abs=0.11)  # 3000 records: a second's burst, then 1000/s
    assert cold_sent_at == pytest.approx(0.5)  # the cold shard went at once
    assert c.metrics().paced > 0


def test_a_resharded_stream_is_noticed_and_the_map_reloaded() -> None:
    stream = InMemoryKinesis("s", shards=1)
    c = paced_core(stream)
    stream.split_shard(
        StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(HALF)
    )
    c.add(Record("e1", "u1", b"{}"), 0.0)
    c.flush_through()
    batch = c.next_batch(0.0)
    assert batch is not None and not c.shard_map_due(0.0)
    c.on_response(batch, stream.put_records(**batch.request("s")), 0.0, 0.0)
    assert c.shard_map_due(0.0)
    c.update_shard_map(load_shard_map(stream, "s"), 0.0)
    assert not c.shard_map_due(0.0)
