"""Parity: windowed counts from the stream processor equal DuckDB's over the Parquet lake.

The same events go through the embedded pipeline (Kinesis -> feature processor -> DynamoDB, and
-> lander -> S3/Glue). For several read times, every user's counts per event type and every
item's interactions over 1 h, 24 h, 7 d and all time are read with ``OnlineStore.read`` and
computed in SQL from the window definitions (``feature_store.features``), and must be equal.
Events arrive out of event-time order, late ones included.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, datetime

from feature_store.definitions import lookup
from feature_store.features import ITEM_WINDOWS, USER_WINDOWS, item_key, user_key
from feature_store.online import OnlineStore
from feature_store.sql import connect, lake_dataset
from feature_store.windows import DAY_MS, HOUR_MS, MINUTE_MS, Window
from infra.clients import async_client, client, s3_filesystem
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer
from streamrec.wiring import pipeline

END = int(datetime(2026, 11, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)
USERS, ITEMS, EVENTS = 12, 25, 700
READ_TIMES = (END, END + 20 * MINUTE_MS, END + 5 * HOUR_MS, END + 3 * DAY_MS)
KINDS = ("view", "click", "purchase")
CATCH_UP_SECONDS = 120


def parity_events(seed: int = 5) -> list[Event]:
    """Events over the 9 days before END, denser in the last hours, in shuffled order."""
    rng = random.Random(seed)
    events = []
    for n in range(EVENTS):
        back = rng.choice((9 * DAY_MS, 30 * HOUR_MS, 2 * HOUR_MS, 40 * MINUTE_MS))
        events.append(
            Event(
                event_id=f"p{n}",
                user_id=f"u{rng.randrange(USERS)}",
                item_id=f"i{rng.randrange(ITEMS)}",
                event_type=rng.choice(KINDS),
                timestamp=END - rng.randrange(back),
            )
        )
    return events


def in_window(window: Window, now_ms: int) -> str:
    """The SQL condition of the window ending at ``now_ms`` (integer bucket arithmetic)."""
    size = window.resolution.size_ms
    return (
        f"timestamp // {size} > {now_ms // size - window.buckets} "
        f"and timestamp // {size} <= {now_ms // size}"
    )


def sql_counts(settings: Settings, now_ms: int) -> dict[str, dict[str, object]]:
    """Every row key's windowed features as DuckDB computes them from the lake."""
    dataset = lake_dataset(
        client("glue", settings),
        s3_filesystem(settings),
        settings.glue_database,
        settings.glue_events_table,
    )
    db = connect(dataset, settings.glue_database, settings.glue_events_table)
    table = settings.glue_events_table
    out: dict[str, dict[str, object]] = defaultdict(dict)
    for window in (*USER_WINDOWS, None):
        name = f"user.event_counts_{window.name if window else 'all'}"
        where = f"where {in_window(window, now_ms)}" if window else ""
        for user in range(USERS):
            out[user_key(f"u{user}")][name] = {}
        query = f"select user_id, event_type, count(*) from {table} {where} group by 1, 2"
        for user_id, kind, n in db.execute(query).fetchall():
            out[user_key(user_id)][name][kind] = n  # type: ignore[index]
    for window in (*ITEM_WINDOWS, None):
        name = f"item.interactions_{window.name if window else 'all'}"
        where = f"where {in_window(window, now_ms)}" if window else ""
        for item in range(ITEMS):
            out[item_key(f"i{item}")][name] = 0
        query = f"select item_id, count(*) from {table} {where} group by 1"
        for item_id, n in db.execute(query).fetchall():
            out[item_key(item_id)][name] = n
    return out


async def stream_counts(settings: Settings, now_ms: int) -> dict[str, dict[str, object]]:
    """The same features as the stream processor stored them, read through the online store."""
    keys = [user_key(f"u{u}") for u in range(USERS)] + [item_key(f"i{i}") for i in range(ITEMS)]
    names = [
        *(f"user.event_counts_{w}" for w in ("1h", "24h", "7d", "all")),
        *(f"item.interactions_{w}" for w in ("1h", "24h", "7d", "all")),
    ]
    lookup(names)  # every name is a definition
    async with async_client("dynamodb", settings) as dynamodb:
        values = await OnlineStore(dynamodb, settings.features_table).read(keys, names, now_ms)
    return {k: v or {} for k, v in zip(keys, values, strict=True)}


async def test_windowed_counts_of_the_stream_equal_duckdb_over_the_lake(
    applied: Settings,
) -> None:
    events = parity_events()
    with EventProducer(client("kinesis", applied), applied.stream_name) as producer:
        producer.put_many(events)
    async with pipeline(applied) as p:
        await asyncio.wait_for(p.runner.run(until_caught_up=True), CATCH_UP_SECONDS)

    (total,) = connect(
        lake_dataset(
            client("glue", applied),
            s3_filesystem(applied),
            applied.glue_database,
            applied.glue_events_table,
        ),
        applied.glue_database,
        applied.glue_events_table,
    ).execute(f"select count(*) from {applied.glue_events_table}").fetchone() or (0,)
    assert total == len(events)  # every event landed, once

    for now_ms in READ_TIMES:
        expected = sql_counts(applied, now_ms)
        actual = await stream_counts(applied, now_ms)
        assert actual == expected, f"read at END + {(now_ms - END) // MINUTE_MS} min"
    last_hour = sql_counts(applied, END)[item_key("i0")]["item.interactions_1h"]
    assert isinstance(last_hour, int) and last_hour > 0  # the windows hold data: not all zeros
