"""AsyncEventProducer on the in-memory stream: results, faults, order, backpressure."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from producers.async_producer import AsyncEventProducer
from producers.errors import Backpressure, DeliveryFailed, ProduceError, ProducerClosed
from producers.synthetic import synthetic_events
from producers.testing import (
    THROTTLED,
    AsyncClient,
    AsyncFaultInjectingKinesis,
    InMemoryKinesis,
    ManualClock,
    fail_calls,
    mixed_faults,
)

STREAM = "events"


def producer(client: Any, **options: Any) -> AsyncEventProducer:
    clock = options.pop("clock", None) or ManualClock()
    return AsyncEventProducer(client, STREAM, clock=clock, rand=lambda: 0.5, **options)


async def test_put_returns_futures_of_where_each_event_went() -> None:
    stream = InMemoryKinesis(STREAM, shards=2)
    events = synthetic_events(700, users=300)
    async with producer(AsyncClient(stream)) as p:
        futures = await p.put_many(events)
        result = await p.flush()
    assert (result.sent, result.failed) == (700, [])
    deliveries = [await f for f in futures]
    assert [d.event_id for d in deliveries] == [e.event_id for e in events]
    by_position = {(r.shard_id, r.sequence_number): r for r in stream.log}
    for delivery, event in zip(deliveries, events, strict=True):
        assert by_position[(delivery.shard_id, delivery.sequence_number)].data == event.to_json()
    assert p.metrics.calls >= 2 and p.metrics.records_per_call_max <= 500


async def test_faults_are_retried_in_key_order_and_reported() -> None:
    stream = InMemoryKinesis(STREAM)
    clock = ManualClock()
    flaky = AsyncFaultInjectingKinesis(
        AsyncClient(stream),
        mixed_faults({THROTTLED: 0.2, "InternalFailure": 0.05, "KMSNotFoundException": 0.01}),
        timeouts=0.05,
        connection_errors=0.05,
        latency=0.01,
        sleep=clock.sleep_async,
        seed=3,
    )
    events = synthetic_events(3_000, users=200, seed=5)
    p = producer(flaky, clock=clock, buffer_events=500, put_timeout=None)
    futures = await p.put_many(events)
    result = await p.close()
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert {type(exc) for exc in failed} == {DeliveryFailed}
    assert sorted(f.event_id for f in result.failed) == sorted(
        exc.event_id for exc in failed if isinstance(exc, DeliveryFailed)
    )
    assert Counter(f.error_code for f in result.failed) == Counter(
        {"KMSNotFoundException": len(result.failed)}
    )  # the only code that is not retried
    written = [json.loads(r.data)["event_id"] for r in stream.log]
    assert result.sent + len(result.failed) == 3_000
    assert set(written) >= {f.result().event_id for f in futures if f.exception() is None}
    put_order = {e.event_id: i for i, e in enumerate(events)}
    first: dict[str, list[int]] = {}
    for event_id in dict.fromkeys(written):  # first writes, in write order
        index = put_order[event_id]
        first.setdefault(events[index].user_id, []).append(index)
    assert all(order == sorted(order) for order in first.values())
    assert p.metrics.max_buffered_events <= 500


async def test_a_full_buffer_raises_or_blocks_up_to_a_timeout() -> None:
    gate = asyncio.Event()
    stream = InMemoryKinesis(STREAM)

    class Gated:
        async def put_records(self, **kwargs: Any) -> dict[str, Any]:
            await gate.wait()
            return stream.put_records(**kwargs)

    clock = ManualClock()
    events = synthetic_events(5)
    p = producer(Gated(), clock=clock, buffer_events=2, rate_limit=False, put_timeout=3.0)
    await p.put_many(events[:2])
    with pytest.raises(Backpressure) as caught:
        await p.put(events[2])
    assert clock.waits == [3.0] and caught.value.retry_after > 0
    with pytest.raises(Backpressure):
        await p.put(events[2], timeout=0)
    blocked = asyncio.create_task(p.put(events[2], timeout=None))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not blocked.done()  # waiting for room
    gate.set()
    delivery = await (await blocked)
    assert delivery.event_id == events[2].event_id
    assert (await p.close()).sent == 3
    with pytest.raises(ProducerClosed):
        await p.put(events[3])


async def test_leaving_the_block_with_failed_events_raises_produce_error() -> None:
    stream = InMemoryKinesis(STREAM)
    flaky = AsyncFaultInjectingKinesis(AsyncClient(stream), fail_calls({0: {0: "KMSDisabled"}}))
    events = synthetic_events(2, users=2)
    with pytest.raises(ProduceError) as caught:
        async with producer(flaky, rate_limit=False) as p:
            futures = await p.put_many(events)
    assert [f.event_id for f in caught.value.result.failed] == [events[0].event_id]
    with pytest.raises(DeliveryFailed):
        await futures[0]
    assert (await futures[1]).event_id == events[1].event_id


async def test_close_with_a_timeout_reports_what_is_still_stuck() -> None:
    never = asyncio.Event()

    class Stuck:
        async def put_records(self, **kwargs: Any) -> dict[str, Any]:
            await never.wait()
            raise AssertionError("unreachable")

    p = producer(Stuck(), rate_limit=False)
    futures = await p.put_many(synthetic_events(3, users=3))
    result = await p.close(timeout=1.0)
    assert [f.error_code for f in result.failed] == ["ProducerClosed"] * 3
    assert all(isinstance(f.exception(), DeliveryFailed) for f in futures)
