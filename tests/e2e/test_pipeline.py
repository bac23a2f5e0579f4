"""The whole pipeline on the embedded stack: SDK → Kinesis → processors → DynamoDB, S3, Glue → API.

Run twice: with the in-process cache and with a real Redis server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

import httpx
import pytest
import redis

from feature_store.features import RECENT_ITEMS
from feature_store.offline import partition_of
from infra.clients import client
from infra.local_redis import delete_prefix, unique_prefix
from infra.settings import Settings
from models.worker import running
from producers.events import Event
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import Pipeline, pipeline, recommender_app

EVENTS = 2_000
CATCH_UP_DEADLINE_SECONDS = 120


@pytest.fixture(params=["memory-cache", "redis-cache"])
def e2e_settings(request: pytest.FixtureRequest, applied: Settings) -> Settings:
    """The applied stack, with the recommendation cache in memory or in a real Redis."""
    if request.param == "memory-cache":
        return applied
    url = request.getfixturevalue("redis_url")
    prefix = unique_prefix("e2e")
    request.addfinalizer(lambda: delete_prefix(url, prefix))
    return applied.model_copy(update={"redis_url": url, "cache_prefix": prefix})


def produce(settings: Settings, events: Sequence[Event]) -> None:
    with EventProducer(client("kinesis", settings), settings.stream_name) as producer:
        producer.put_many(events)


def put_poison(settings: Settings) -> None:
    """Two records no event decodes from, sent around the SDK as a broken client would."""
    client("kinesis", settings).put_records(
        StreamName=settings.stream_name,
        Records=[
            {"Data": b"{not json", "PartitionKey": "u-poison"},
            {"Data": json.dumps({"event_id": "x", "user_id": "u"}).encode(), "PartitionKey": "u"},
        ],
    )


def expected_recent(events: Sequence[Event]) -> list[str]:
    """A user's distinct items, newest interaction first (ties: later in the stream first)."""
    latest: dict[str, tuple[int, int]] = {}
    for index, event in enumerate(events):
        latest[event.item_id] = max(latest.get(event.item_id, (0, -1)), (event.timestamp, index))
    return [item for item, _ in sorted(latest.items(), key=lambda kv: kv[1], reverse=True)][
        :RECENT_ITEMS
    ]


async def consume(p: Pipeline) -> None:
    await asyncio.wait_for(p.runner.run(until_caught_up=True), CATCH_UP_DEADLINE_SECONDS)


async def test_events_flow_to_features_lake_and_recommendations(e2e_settings: Settings) -> None:
    settings = e2e_settings
    events = synthetic_events(EVENTS, users=40, items=150, seed=11)
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    produce(settings, events[:1_000])
    put_poison(settings)
    produce(settings, events[1_000:])

    async with pipeline(settings) as p:
        await consume(p)
        assert p.runner.stats.records == EVENTS + 2
        assert p.runner.stats.events == EVENTS
        assert p.runner.stats.poison == 2

        # online features equal the ones computed directly from the events
        items = sorted({e.item_id for e in events})
        counts = {i: Counter() for i in items}
        for event in events:
            counts[event.item_id][event.event_type.value] += 1
        stored_items = await p.online.items(items)
        assert {f.item_id: f.counts for f in stored_items if f} == {
            i: dict(c) for i, c in counts.items()
        }
        for user_id, user_events in by_user.items():
            user = await p.online.user(user_id)
            assert user is not None
            assert [r.item_id for r in user.recent] == expected_recent(user_events)

        # the lake holds every event once, in the partitions Glue lists
        landed = await p.offline.read_events()
        assert sorted(landed, key=lambda e: e.event_id) == sorted(events, key=lambda e: e.event_id)
        partitions = set(await p.offline.list_partitions())
        keys = await p.offline.list_keys()
        assert partitions and {_partition_of_key(k) for k in keys} == partitions
        assert _partition_of_key(keys[0]) <= partition_of(_now_ms())

        # the poison records went to the dead-letter prefix
        dead = await p.clients.s3.list_objects_v2(
            Bucket=settings.bucket, Prefix=settings.dead_letter_prefix
        )
        assert dead["KeyCount"] == 2

        # recommendations: non-empty, nothing the user has seen, cached the second time
        user_id = events[-1].user_id
        seen = {e.item_id for e in by_user[user_id]}
        async with (
            recommender_app(settings, p.online) as app,
            running(app) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            first = (await http.get(f"/recommendations/{user_id}", params={"k": 10})).json()
            second = (await http.get(f"/recommendations/{user_id}", params={"k": 10})).json()
        recommended = [r["item_id"] for r in first["recommendations"]]
        assert len(recommended) == 10
        assert not seen & set(recommended)
        assert (first["cached"], second["cached"]) == (False, True)
        assert second["recommendations"] == first["recommendations"]
        if settings.redis_url:
            stored = redis.Redis.from_url(settings.redis_url).keys(f"{settings.cache_prefix}:*")
            assert stored, "the answer was not cached in Redis"


async def test_a_restarted_consumer_resumes_from_its_checkpoint(applied: Settings) -> None:
    events = synthetic_events(600, users=10, items=40, seed=5)
    produce(applied, events[:300])
    async with pipeline(applied) as p:
        await consume(p)
    produce(applied, events[300:])
    async with pipeline(applied) as p:
        await consume(p)
        assert p.runner.stats.events == 300  # only what came after the checkpoint
        totals = Counter(e.item_id for e in events)
        stored = await p.online.items(sorted(totals))
        assert {f.item_id: f.total for f in stored if f} == dict(totals)


def _partition_of_key(key: str) -> tuple[str, str]:
    dt, hour = (part.split("=", 1)[1] for part in key.split("/")[1:3])
    return dt, hour


def _now_ms() -> int:
    return int(time.time() * 1000)
