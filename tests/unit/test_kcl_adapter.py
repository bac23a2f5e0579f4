"""The KCL adapter spoken to through amazon_kclpy's own protocol loop (JSON lines in and out).

The daemon's side is played by lines of input; the processors and the dead-letter sink are
recording stand-ins of our own ports. Positions are checked against the embedded runner's
decoding of the same aggregated record.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from amazon_kclpy.kcl import KCLProcess

from consumers import kcl
from consumers.dead_letter import Poison
from consumers.kcl import KclShardProcessor
from consumers.processor import Batch
from consumers.runner import decode
from feature_store.positions import Position
from producers.aggregation import Aggregate, deaggregate
from producers.synthetic import synthetic_events

SHARD = "shardId-000000000001"
SEQUENCE = "49590338271490256608559692538361571095921575989136588898"
ARRIVAL_MS = 1_714_564_800_000


class Recording:
    """A processor that records its calls and fails its first ``failures`` batches."""

    def __init__(self, calls: list[str], name: str, failures: int = 0) -> None:
        self.calls, self.name, self.failures = calls, name, failures
        self.batches: list[Batch] = []

    async def initialize(self, shard_id: str) -> None:
        self.calls.append(f"{self.name}.initialize")

    async def process_records(self, batch: Batch) -> None:
        self.calls.append(f"{self.name}.process_records")
        if self.failures:
            self.failures -= 1
            raise RuntimeError("DynamoDB is down")
        self.batches.append(batch)

    async def shard_ended(self, shard_id: str) -> None:
        self.calls.append(f"{self.name}.shard_ended")

    async def shutdown_requested(self, shard_id: str) -> None:
        self.calls.append(f"{self.name}.shutdown_requested")


class WithLeaseLost(Recording):
    async def lease_lost(self, shard_id: str) -> None:
        self.calls.append(f"{self.name}.lease_lost")


class Sink:
    """The dead-letter port: keeps what it is sent."""

    def __init__(self) -> None:
        self.sent: list[Poison] = []

    async def send(self, poison: list[Poison]) -> list[str]:
        self.sent += poison
        return []


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(autouse=True)
def no_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kcl, "RETRY_BASE_SECONDS", 0.0)


def user_records(data: bytes, *, sub_count: int = 1) -> list[dict[str, Any]]:
    """KCL-style records: what the daemon sends for one Kinesis record (split if aggregated)."""
    users = deaggregate(data)
    parts = [("u1", data)] if users is None else [(u.partition_key, u.data) for u in users]
    return [
        {
            "action": "record",
            "data": base64.b64encode(payload).decode(),
            "partitionKey": key,
            "sequenceNumber": SEQUENCE,
            "subSequenceNumber": sub,
            "approximateArrivalTimestamp": ARRIVAL_MS,
        }
        for sub, (key, payload) in enumerate(parts)
    ]


def lines(*messages: dict[str, Any]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


INITIALIZE = {
    "action": "initialize",
    "shardId": SHARD,
    "sequenceNumber": "TRIM_HORIZON",
    "subSequenceNumber": 0,
}
CHECKPOINT_OK = {"action": "checkpoint", "sequenceNumber": SEQUENCE, "subSequenceNumber": None}


def process(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"action": "processRecords", "records": records, "millisBehindLatest": 7}


def run(adapter: KclShardProcessor, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    """Feed ``messages`` to amazon_kclpy's loop; the actions it wrote back, in order."""
    out = io.StringIO()
    KCLProcess(adapter, io.StringIO(lines(*messages)), out, io.StringIO()).run()
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def aggregated_record(n: int) -> bytes:
    agg = Aggregate()
    for event in synthetic_events(n, seed=3):
        agg.add(event.user_id, event.to_json())
    return agg.to_bytes()


def test_events_get_the_positions_the_embedded_runner_gives_them(
    loop: asyncio.AbstractEventLoop,
) -> None:
    calls: list[str] = []
    features, lander = Recording(calls, "features"), Recording(calls, "lander")
    adapter = KclShardProcessor([features, lander], Sink(), loop)
    data = aggregated_record(5)
    written = run(adapter, INITIALIZE, process(user_records(data)), CHECKPOINT_OK)

    arrival = datetime.fromtimestamp(ARRIVAL_MS / 1000, tz=UTC)
    get_records = [
        {
            "SequenceNumber": SEQUENCE,
            "PartitionKey": "u1",
            "Data": data,
            "ApproximateArrivalTimestamp": arrival,
        }
    ]
    embedded, _ = decode(SHARD, get_records)
    (batch,) = features.batches
    assert [(s.event, s.position, s.mark) for s in batch.events] == [
        (s.event, s.position, s.mark) for s in embedded
    ]
    assert batch.events[-1].mark == f"{SEQUENCE}:4"
    assert batch.millis_behind_latest == 7
    assert calls == [
        "features.initialize",
        "lander.initialize",
        "features.process_records",
        "lander.process_records",
    ]
    assert [w["action"] for w in written] == ["status", "checkpoint", "status"]
    assert written[1]["sequenceNumber"] is None  # the batch's last record, sub-sequence included


def test_a_batch_that_keeps_failing_is_never_checkpointed_and_the_child_exits(
    loop: asyncio.AbstractEventLoop,
) -> None:
    calls: list[str] = []
    adapter = KclShardProcessor([Recording(calls, "features", failures=99)], Sink(), loop)
    out = io.StringIO()
    messages = lines(INITIALIZE, process(user_records(aggregated_record(2))), CHECKPOINT_OK)
    # amazon_kclpy logs other exceptions and reports the action done; SystemExit gets through
    with pytest.raises(SystemExit):
        KCLProcess(adapter, io.StringIO(messages), out, io.StringIO()).run()
    assert calls.count("features.process_records") == kcl.BATCH_ATTEMPTS
    assert '"checkpoint"' not in out.getvalue()
    assert '"responseFor": "processRecords"' not in out.getvalue()


def test_a_batch_that_fails_once_is_retried_then_checkpointed_once(
    loop: asyncio.AbstractEventLoop,
) -> None:
    calls: list[str] = []
    features = Recording(calls, "features", failures=1)
    adapter = KclShardProcessor([features], Sink(), loop)
    written = run(adapter, INITIALIZE, process(user_records(aggregated_record(3))), CHECKPOINT_OK)
    assert calls.count("features.process_records") == 2
    assert len(features.batches) == 1
    assert [w["action"] for w in written].count("checkpoint") == 1


def test_poison_goes_to_the_dead_letter_sink_and_the_shard_moves_on(
    loop: asyncio.AbstractEventLoop,
) -> None:
    sink, features = Sink(), Recording([], "features")
    records = user_records(b"not json") + user_records(aggregated_record(2))
    records[0]["subSequenceNumber"], records[0]["sequenceNumber"] = 0, "4959"
    written = run(
        KclShardProcessor([features], sink, loop), INITIALIZE, process(records), CHECKPOINT_OK
    )
    (poison,) = sink.sent
    assert (poison.shard_id, poison.sequence_number, poison.data) == (SHARD, "4959", b"not json")
    assert poison.sub_sequence is None and poison.reason
    assert len(features.batches[0].events) == 2
    assert [w["action"] for w in written].count("checkpoint") == 1


def test_shard_end_runs_the_processors_then_checkpoints(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []
    adapter = KclShardProcessor([Recording(calls, "features")], Sink(), loop)
    ended = {"action": "shardEnded"}
    written = run(adapter, INITIALIZE, ended, {**CHECKPOINT_OK, "sequenceNumber": "SHARD_END"})
    assert calls == ["features.initialize", "features.shard_ended"]
    assert [w["action"] for w in written] == ["status", "checkpoint", "status"]


def test_a_lost_lease_flushes_without_checkpointing(loop: asyncio.AbstractEventLoop) -> None:
    calls: list[str] = []
    processors = [Recording(calls, "features"), WithLeaseLost(calls, "lander")]
    written = run(KclShardProcessor(processors, Sink(), loop), INITIALIZE, {"action": "leaseLost"})
    assert calls[2:] == ["features.shutdown_requested", "lander.lease_lost"]
    assert "checkpoint" not in [w["action"] for w in written]


def test_a_checkpoint_refused_for_a_lost_lease_is_not_an_error(
    loop: asyncio.AbstractEventLoop,
) -> None:
    refused = {**CHECKPOINT_OK, "error": "ShutdownException"}
    adapter = KclShardProcessor([Recording([], "features")], Sink(), loop)
    written = run(adapter, INITIALIZE, process(user_records(aggregated_record(2))), refused)
    assert [w["action"] for w in written] == ["status", "checkpoint", "status"]


class Buffering(Recording):
    """A lander stand-in: holds every event from the second batch on until a flush."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__(calls, "lander")
        self.held: Position | None = None

    async def process_records(self, batch: Batch) -> None:
        await super().process_records(batch)
        if len(self.batches) >= 2 and batch.events and self.held is None:
            self.held = batch.events[0].position

    def held_from(self, shard_id: str) -> Position | None:
        return self.held

    async def shutdown_requested(self, shard_id: str) -> None:
        await super().shutdown_requested(shard_id)
        self.held = None


def test_a_held_batch_is_checkpointed_only_after_the_flush(
    loop: asyncio.AbstractEventLoop,
) -> None:
    lander = Buffering([])
    first = user_records(aggregated_record(2))
    second = [{**r, "sequenceNumber": str(int(SEQUENCE) + 10)} for r in first]
    written = run(
        KclShardProcessor([lander], Sink(), loop),
        INITIALIZE,
        process(first),
        CHECKPOINT_OK,
        process(second),  # held: no checkpoint
        process([]),  # an empty answer: still held
        {"action": "shutdownRequested"},
        {**CHECKPOINT_OK, "sequenceNumber": second[-1]["sequenceNumber"]},
    )
    actions = [w["action"] for w in written]
    assert actions == ["status", "checkpoint", "status", "status", "status", "checkpoint", "status"]
    assert written[5]["sequenceNumber"] is None  # after the flush: the last delivered record
    assert len(lander.batches) == 3


def test_an_empty_answer_after_a_flush_checkpoints_the_held_back_position(
    loop: asyncio.AbstractEventLoop,
) -> None:
    lander = Buffering([])
    first = user_records(aggregated_record(2))
    second = [{**r, "sequenceNumber": str(int(SEQUENCE) + 10)} for r in first]
    third = [{**r, "sequenceNumber": str(int(SEQUENCE) + 20)} for r in first]
    adapter = KclShardProcessor([lander], Sink(), loop)
    messages = [INITIALIZE, process(first), CHECKPOINT_OK, process(second), process(third)]
    out = io.StringIO()
    KCLProcess(adapter, io.StringIO(lines(*messages)), out, io.StringIO()).run()
    assert out.getvalue().count('"checkpoint"') == 1  # only the first batch: the rest is held
    # the buffer starting in the second batch is written: the checkpoint covers the third
    lander.held = Position(int(SEQUENCE) + 20, 0)
    empty_answer = lines(
        process([]), {**CHECKPOINT_OK, "sequenceNumber": second[0]["sequenceNumber"]}
    )
    out = io.StringIO()
    KCLProcess(adapter, io.StringIO(empty_answer), out, io.StringIO()).run()
    (checkpoint,) = [json.loads(x) for x in out.getvalue().splitlines() if '"checkpoint"' in x]
    assert (checkpoint["sequenceNumber"], checkpoint["subSequenceNumber"]) == (
        second[-1]["sequenceNumber"],
        1,
    )
