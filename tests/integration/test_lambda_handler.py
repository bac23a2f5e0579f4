"""The Lambda adapter on moto: Lambda-shaped events in, features and lake out, partial failures."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from consumers.dead_letter import DeadLetterSink
from consumers.lambda_handler import KinesisBatchHandler, make_handler
from consumers.processor import Batch, RecordProcessor
from infra.clients import client
from infra.settings import Settings
from producers.aggregation import Aggregate
from producers.events import Event
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec import lambda_entry
from streamrec.wiring import Pipeline, pipeline
from tests.streams import read_records

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/events"


def lambda_event(settings: Settings) -> dict[str, Any]:
    """Every record of the stream as one Lambda Kinesis event, shards interleaved."""
    by_shard = read_records(client("kinesis", settings), settings.stream_name)
    rows = [(shard, r) for shard, records in by_shard.items() for r in records]
    return {"Records": [_lambda_record(shard, r) for shard, r in rows]}


def _lambda_record(shard_id: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "awsRegion": "us-east-1",
        "eventSourceARN": ARN,
    }


def produce(settings: Settings, events: Sequence[Event]) -> None:
    with EventProducer(client("kinesis", settings), settings.stream_name) as producer:
        producer.put_many(events)


def adapter(p: Pipeline, *extra: RecordProcessor) -> KinesisBatchHandler:
    settings = p.settings
    sink = DeadLetterSink(p.clients.s3, bucket=settings.bucket, prefix=settings.dead_letter_prefix)
    return KinesisBatchHandler([*extra, p.features, p.lander], sink)  # extras run first


async def item_totals(p: Pipeline, events: Sequence[Event]) -> dict[str, int]:
    items = sorted({e.item_id for e in events})
    return {f.item_id: f.total for f in await p.online.items(items) if f}


class FailsOn:
    """A processor that fails on one shard, as an outage of one partition would."""

    def __init__(self, shard_id: str) -> None:
        self.shard_id = shard_id

    async def initialize(self, shard_id: str) -> None: ...

    async def process_records(self, batch: Batch) -> None:
        if batch.shard_id == self.shard_id:
            raise RuntimeError(f"processor failed on {batch.shard_id}")

    async def shard_ended(self, shard_id: str) -> None: ...

    async def shutdown_requested(self, shard_id: str) -> None: ...

    async def lease_lost(self, shard_id: str) -> None: ...


async def test_an_event_is_applied_and_redelivery_counts_once(applied: Settings) -> None:
    events = synthetic_events(400, users=20, items=50, seed=3)
    produce(applied, events)
    event = lambda_event(applied)

    async with pipeline(applied) as p:
        handler = adapter(p)
        assert await handler.handle(event) == {"batchItemFailures": []}
        assert await handler.handle(event) == {"batchItemFailures": []}  # Lambda's retry
        assert await item_totals(p, events) == dict(Counter(e.item_id for e in events))
        landed = await p.offline.read_events()
        assert sorted(e.event_id for e in landed) == sorted(e.event_id for e in events)


async def test_a_failing_shard_is_reported_by_its_first_record(applied: Settings) -> None:
    events = synthetic_events(300, users=30, items=40, seed=4)
    produce(applied, events)
    event = lambda_event(applied)
    shards = sorted({r["eventID"].partition(":")[0] for r in event["Records"]})
    assert len(shards) == 2, "the events must reach both shards"
    failing = shards[0]
    first = next(r for r in event["Records"] if r["eventID"].startswith(failing + ":"))

    async with pipeline(applied) as p:
        response = await adapter(p, FailsOn(failing)).handle(event)
        assert response == {
            "batchItemFailures": [{"itemIdentifier": first["kinesis"]["sequenceNumber"]}]
        }
        ok = [
            Event.from_json(base64.b64decode(r["kinesis"]["data"]))
            for r in event["Records"]
            if not r["eventID"].startswith(failing + ":")
        ]
        stored = await item_totals(p, ok)
        for item, total in Counter(e.item_id for e in ok).items():
            assert stored[item] >= total  # the healthy shard's events took effect
        assert sum(stored.values()) == len(ok)  # and nothing of the failed shard's

        # Lambda retries the failed shard's records; now the processor is healthy
        retry = {"Records": [r for r in event["Records"] if r["eventID"].startswith(failing)]}
        assert await adapter(p).handle(retry) == {"batchItemFailures": []}
        assert await item_totals(p, events) == dict(Counter(e.item_id for e in events))


async def test_poison_goes_to_the_dead_letter_prefix_not_to_failures(applied: Settings) -> None:
    events = synthetic_events(50, users=5, items=10, seed=5)
    produce(applied, events)
    bad = [b"{not json", json.dumps({"event_id": "x", "user_id": "u"}).encode()]
    kinesis = client("kinesis", applied)
    kinesis.put_records(
        StreamName=applied.stream_name,
        Records=[{"Data": data, "PartitionKey": f"p{i}"} for i, data in enumerate(bad)],
    )
    async with pipeline(applied) as p:
        assert await adapter(p).handle(lambda_event(applied)) == {"batchItemFailures": []}
        assert await item_totals(p, events) == dict(Counter(e.item_id for e in events))
        listing = await p.clients.s3.list_objects_v2(
            Bucket=applied.bucket, Prefix=applied.dead_letter_prefix
        )
        payloads = []
        for obj in listing.get("Contents", []):
            body = await (await p.clients.s3.get_object(Bucket=applied.bucket, Key=obj["Key"]))[
                "Body"
            ].read()
            payloads.append(base64.b64decode(json.loads(body)["data_base64"]))
        assert sorted(payloads) == sorted(bad)


async def test_aggregated_records_are_deaggregated(applied: Settings) -> None:
    events = synthetic_events(120, users=1, items=30, seed=6)
    aggregate = Aggregate()
    for e in events:
        aggregate.add(e.partition_key, e.to_json())
    client("kinesis", applied).put_record(
        StreamName=applied.stream_name, Data=aggregate.to_bytes(), PartitionKey=events[0].user_id
    )
    event = lambda_event(applied)
    assert len(event["Records"]) == 1

    async with pipeline(applied) as p:
        assert await adapter(p).handle(event) == {"batchItemFailures": []}
        assert await item_totals(p, events) == dict(Counter(e.item_id for e in events))
        user = await p.online.user(events[0].user_id)
        assert user is not None and user.events == len(events)


def test_the_handler_builds_once_and_keeps_its_loop(applied: Settings) -> None:
    """``make_handler`` builds once, on the first call, and serves every call on one loop."""
    events = synthetic_events(60, users=6, items=12, seed=7)
    produce(applied, events)
    builds = 0

    async def build() -> KinesisBatchHandler:
        nonlocal builds
        builds += 1
        return await lambda_entry.build(applied)

    handler = make_handler(build)
    event = lambda_event(applied)
    assert handler(event, None) == {"batchItemFailures": []}
    assert handler(event, None) == {"batchItemFailures": []}
    assert builds == 1

    async def totals() -> dict[str, int]:
        async with pipeline(applied) as p:
            return await item_totals(p, events)

    assert asyncio.run(totals()) == dict(Counter(e.item_id for e in events))
