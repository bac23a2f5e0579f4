"""The pure producer core: Kinesis's limits, per-key order, backoff, linger, buffer, answers."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.aggregation import deaggregate
from producers.batching import Batch
from producers.config import ProducerConfig
from producers.core import ProducerCore, backoff_delay
from producers.errors import CallFailure, RecordTooLarge
from producers.records import (
    HELD_OVERHEAD_BYTES,
    MAX_BYTES_PER_CALL,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_CALL,
    Delivery,
    FailedEvent,
    Record,
)

THROTTLED = "ProvisionedThroughputExceededException"
Answer = Callable[[Batch], dict[str, Any]]


def core(**options: Any) -> ProducerCore:
    return ProducerCore(ProducerConfig(rate_limit=False, **options), rand=lambda: 0.5)


def record(index: int, key: str | None = None, size: int = 40) -> Record:
    """A record of exactly ``size`` bytes, data plus key."""
    key = key or f"k{index}"
    return Record(f"e{index}", key, b"x" * (size - len(key)))


def ok(batch: Batch) -> dict[str, Any]:
    return {"Records": [{"ShardId": "s-0", "SequenceNumber": str(i)} for i in batch.entries]}


def drain(c: ProducerCore, answer: Answer = ok, now: float = 0.0) -> list[Batch]:
    """Flush everything through ``answer``; the calls made, in order."""
    c.flush_through()
    batches = []
    while not c.idle:
        batch = c.next_batch(now)
        if batch is None:
            wake = c.next_wakeup(now)
            assert wake is not None and wake >= now, "the core must say when to come back"
            now = wake
            continue
        batches.append(batch)
        c.on_response(batch, answer(batch), now, now)
    return batches


def assert_within_limits(batches: list[Batch]) -> None:
    for batch in batches:
        sizes = [len(e.data) + len(e.partition_key.encode()) for e in batch.entries]
        assert len(batch.entries) <= MAX_RECORDS_PER_CALL
        assert sum(sizes) <= MAX_BYTES_PER_CALL
        assert max(sizes) <= MAX_RECORD_BYTES


def test_501_records_are_never_one_call() -> None:
    c = core()
    for i in range(501):
        c.add(record(i), 0.0)
    assert [len(b.entries) for b in drain(c)] == [500, 1]


def test_5_mib_plus_one_byte_is_never_one_call() -> None:
    c = core()
    for i in range(5):
        c.add(record(i, size=MAX_RECORD_BYTES), 0.0)  # 5 MiB exactly: one call
    assert [len(b.entries) for b in drain(c)] == [5]
    for i in range(5):
        c.add(record(10 + i, size=MAX_RECORD_BYTES - (1 if i == 4 else 0)), 0.0)
    c.add(record(20, "k", size=2), 0.0)  # 5 MiB + 1 byte in all
    batches = drain(c)
    assert [len(b.entries) for b in batches] == [5, 1]
    assert_within_limits(batches)


def test_a_record_over_1_mib_is_refused() -> None:
    with pytest.raises(RecordTooLarge):
        core().add(record(0, size=MAX_RECORD_BYTES + 1), 0.0)


sizes = st.one_of(st.integers(10, 2_000), st.integers(MAX_RECORD_BYTES - 2_000, MAX_RECORD_BYTES))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 600), sizes), min_size=1, max_size=40),
    st.integers(1, 9),
    st.booleans(),
)
def test_no_call_ever_crosses_the_limits(
    mix: list[tuple[int, int]], copies: int, aggregate: bool
) -> None:
    c = core(aggregate=aggregate, buffer_bytes=512 * MAX_RECORD_BYTES, buffer_events=100_000)
    index = 0
    for key, size in mix:  # small records are repeated, to go past 500 per call
        for _ in range(copies if size < 2_000 else 1):
            c.add(record(index, f"k{key}", size), 0.0)
            index += 1
    for _ in range(600 if mix[0][1] < 2_000 else 0):
        c.add(record(index, size=30), 0.0)
        index += 1
    batches = drain(c)
    assert_within_limits(batches)
    assert sum(b.records for b in batches) == index


def flaky(seed: int, rate: float = 0.3) -> Answer:
    rng = random.Random(seed)

    def answer(batch: Batch) -> dict[str, Any]:
        return {
            "Records": [
                {"ErrorCode": THROTTLED}
                if rng.random() < rate
                else {"ShardId": "s", "SequenceNumber": "1"}
                for _ in batch.entries
            ]
        }

    return answer


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=80), st.integers(0, 10**6), st.booleans())
def test_a_later_event_of_a_key_is_never_sent_before_an_earlier_one_is_resolved(
    keys: list[int], seed: int, aggregate: bool
) -> None:
    c = core(aggregate=aggregate, max_attempts=4, max_batch_records=3)
    for i, key in enumerate(keys):
        c.add(record(i, f"k{key}"), 0.0, token=i)
    c.flush_through()
    answer, now, unresolved = flaky(seed), 0.0, set(range(len(keys)))
    first_delivery: list[int] = []
    while not c.idle:
        batch = c.next_batch(now)
        if batch is None:
            now = c.next_wakeup(now) or now
            continue
        entry_keys = [p.record.partition_key for e in batch.entries for p in e.items[:1]]
        assert len(entry_keys) == len(set(entry_keys)), "a key is in one entry of a call"
        for entry in batch.entries:
            for pending in entry.items:  # nothing earlier of its key is still unresolved
                earlier = [
                    i for i in unresolved if i < pending.token and keys[i] == keys[pending.token]
                ]
                assert all(i in [p.token for p in entry.items] for i in earlier)
        for token, result in c.on_response(batch, answer(batch), now, now).resolved:
            unresolved.discard(token)
            if isinstance(result, Delivery):
                first_delivery.append(token)
    for key in set(keys):
        delivered = [i for i in first_delivery if keys[i] == key]
        assert delivered == sorted(delivered)


@given(st.integers(1, 40), st.floats(0, 1), st.floats(0.001, 1), st.floats(1, 20))
def test_backoff_is_full_jitter_within_the_capped_exponential(
    attempt: int, draw: float, base: float, cap: float
) -> None:
    delay = backoff_delay(attempt, lambda: draw, base, cap)
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))
    assert delay == pytest.approx(draw * min(cap, base * 2 ** (attempt - 1)))


def test_a_throttled_entry_waits_its_backoff_then_goes_first() -> None:
    c = core(base_delay=0.2, linger=None)
    c.add(record(0), 0.0)
    c.add(record(1), 0.0)
    c.flush_through()
    first = c.next_batch(0.0)
    assert first is not None
    c.on_response(first, {"Records": [{"ErrorCode": THROTTLED}, {"SequenceNumber": "1"}]}, 1.0, 0)
    assert c.next_batch(1.0) is None
    assert c.next_wakeup(1.0) == pytest.approx(1.0 + 0.5 * 0.2)
    retry = c.next_batch(1.1)
    assert retry is not None and [p.record.event_id for p in retry.entries[0].items] == ["e0"]


def test_linger_holds_a_partial_call_until_its_oldest_record_waited_long_enough() -> None:
    c = core(linger=0.05)
    c.add(record(0), 10.0)
    c.add(record(1), 10.03)
    assert c.next_batch(10.0) is None
    assert c.next_wakeup(10.0) == pytest.approx(10.05)
    assert c.next_batch(10.049) is None
    batch = c.next_batch(10.05)
    assert batch is not None and batch.records == 2


def test_a_full_call_goes_at_once_and_no_linger_waits_for_flush() -> None:
    c = core(linger=None, max_batch_records=10)
    for i in range(9):
        c.add(record(i), 0.0)
    assert c.next_batch(0.0) is None and c.next_wakeup(0.0) is None
    c.add(record(9), 0.0)
    batch = c.next_batch(0.0)
    assert batch is not None and batch.records == 10


def test_the_buffer_bounds_events_and_bytes_and_a_half_full_one_sends_at_once() -> None:
    c = core(linger=None, buffer_events=4, buffer_bytes=2 * MAX_RECORD_BYTES)
    for i in range(2):
        c.add(record(i), 0.0)
    assert c.next_batch(0.0) is not None  # half full: no waiting for more
    for i in range(2, 4):
        c.add(record(i), 0.0)
    assert not c.has_room(40)
    assert c.retry_after(0.0) > 0
    # every held event also counts HELD_OVERHEAD_BYTES: the bound is on memory, not wire bytes
    half = MAX_RECORD_BYTES // 2
    big = core(buffer_bytes=MAX_RECORD_BYTES + 2 * HELD_OVERHEAD_BYTES)
    big.add(record(0, size=half), 0.0)
    assert big.has_room(half) and not big.has_room(half + 1)


def test_flush_waits_for_exactly_what_was_put_before_it() -> None:
    c = core(linger=None)
    c.add(record(0), 0.0)
    target = c.flush_through()
    c.add(record(1), 0.0)
    batch = c.next_batch(0.0)
    assert batch is not None and batch.records == 2  # the later one rides along
    assert not c.resolved_through(target)
    c.on_response(batch, ok(batch), 0.0, 0.0)
    assert c.resolved_through(target) and c.take_result().sent == 2


def test_an_answer_of_the_wrong_length_counts_as_a_failed_call() -> None:
    c = core()
    c.add(record(0), 0.0)
    c.flush_through()
    batch = c.next_batch(0.0)
    assert batch is not None
    assert c.on_response(batch, {"Records": []}, 0.0, 0.0).resolved == []
    assert c.metrics().call_errors["InvalidResponse"] == 1 and c.metrics().retried == 1


def test_abandoned_records_are_reported_once_even_if_their_call_returns_later() -> None:
    c = core()
    c.add(record(0), 0.0, token="a")
    c.add(record(1, "k0"), 0.0, token="b")
    c.flush_through()
    batch = c.next_batch(0.0)
    assert batch is not None
    gone = c.abandon("ProducerClosed", "closed", 1.0).resolved
    assert [(t, r.error_code) for t, r in gone if isinstance(r, FailedEvent)] == [
        ("a", "ProducerClosed"),
        ("b", "ProducerClosed"),
    ]
    assert c.on_response(batch, ok(batch), 2.0, 0.0).resolved == []
    assert c.idle and len(c.take_result().failed) == 2


def test_a_call_error_that_may_have_written_is_counted_as_possible_duplicates() -> None:
    c = core()
    for i in range(3):
        c.add(record(i), 0.0)
    c.flush_through()
    batch = c.next_batch(0.0)
    assert batch is not None
    c.on_call_error(batch, CallFailure("ReadTimeoutError", "timeout", True, True), 0.0, 0.0)
    assert (c.metrics().maybe_duplicated, c.metrics().retried) == (3, 3)


def test_aggregation_packs_a_keys_records_into_one_entry() -> None:
    c = core(aggregate=True, aggregate_max_bytes=300)
    for i in range(10):
        c.add(record(i, "hot", size=60), 0.0, token=i)
    c.add(record(10, "cold"), 0.0, token=10)
    batches = drain(c)
    first = batches[0]
    hot = [e for e in first.entries if e.items[0].record.partition_key == "hot"]
    assert len(hot) == 1, "one entry per key per call"
    users = deaggregate(hot[0].data)
    assert users is not None and [u.partition_key for u in users] == ["hot"] * len(users)
    assert len(hot[0].data) + len(hot[0].partition_key) <= 300
    assert sum(b.records for b in batches) == 11
    cold = [e for e in first.entries if e.items[0].record.partition_key == "cold"]
    assert cold[0].data == record(10, "cold").data  # a lone event goes out plain
