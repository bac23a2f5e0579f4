"""Pacing a shard's reads (pure helpers and waits): shard listing, back-off, iterator age."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

from botocore.exceptions import ClientError

from infra.errors import error_code, translate


async def list_shards(kinesis: Any, stream_name: str) -> list[dict[str, Any]]:
    """Every shard of the stream, closed ones still in retention included (ListShards pages)."""
    kwargs: dict[str, Any] = {"StreamName": stream_name}
    shards: list[dict[str, Any]] = []
    while True:
        response = await kinesis.list_shards(**kwargs)
        shards += response["Shards"]
        if not response.get("NextToken"):
            return shards
        kwargs = {"NextToken": response["NextToken"]}


async def shard_exists(kinesis: Any, stream_name: str, shard_id: str) -> bool:
    """Whether the stream still has ``shard_id`` (GetShardIterator at its trim horizon answers
    ResourceNotFoundException once the shard aged out of the stream's retention)."""
    try:
        await kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise translate("GetShardIterator", exc) from exc
    return True


def backoff(base: float, cap: float, attempt: int) -> float:
    """Full-jitter exponential back-off: uniform in [base/2, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * 2**attempt)
    return random.uniform(min(base / 2, ceiling), ceiling)


def age_ms(records: list[dict[str, Any]], millis_behind: int | None) -> int | None:
    """How old the last record read is (Kinesis's IteratorAgeMilliseconds); 0 at the tip."""
    if records:
        arrival = records[-1]["ApproximateArrivalTimestamp"].timestamp()
        return max(0, int((time.time() - arrival) * 1000))
    return 0 if millis_behind == 0 else millis_behind


async def sleep_until(deadline: float, stop: asyncio.Event) -> None:
    """Wait until ``deadline`` (monotonic) or until ``stop`` is set, whichever comes first."""
    remaining = deadline - time.monotonic()
    if remaining > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=remaining)
