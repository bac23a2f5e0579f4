"""``streamrec demo``: the whole pipeline on real data, on the embedded stack, with progress bars.

Stages: apply the infra; shift MovieLens's timestamps so that the last event is now (it says
so); stream it through the SDK into Kinesis; run the consumers until
every shard is caught up (features in DynamoDB, Parquet in S3, partitions in Glue); serve the
recommender API; print one JSON summary line on stdout. Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

from infra.apply import apply
from infra.clients import client
from infra.local import embedded_stack
from infra.settings import Settings
from models.catalog import ItemCatalog
from models.worker import running
from producers.events import Event
from producers.movielens import load_movielens
from producers.producer import EventProducer
from producers.replay import shift_to_now
from streamrec.observability import ProcessMetrics, serving
from streamrec.wiring import Pipeline, pipeline, recommender_app

PRODUCE_CHUNK = 2_000
DEMO_GET_RECORDS_LIMIT = 200


@contextmanager
def stack(settings: Settings, kind: str) -> Iterator[Settings]:
    """Settings pointing at the stack: an embedded moto, or whatever the environment names."""
    if kind == "env":
        yield settings
        return
    with embedded_stack() as url:
        yield settings.with_endpoint(url)


def run_demo(settings: Settings, *, events: int | None, exit_after: bool, kind: str) -> dict:
    """Run every stage; returns (and prints) the summary."""
    if "get_records_limit" not in settings.model_fields_set:
        # aggregated records hold tens of events each: smaller reads keep the progress bar moving
        settings = settings.model_copy(update={"get_records_limit": DEMO_GET_RECORDS_LIMIT})
    with stack(settings, kind) as settings:
        apply(settings, log=lambda line: print(f"infra: {line}", file=sys.stderr))
        loaded, shift = shift_to_now(load_movielens(events), int(time.time() * 1000))
        # MovieLens ends in 2016: shifted, the newest rating is now and time windows hold data
        print(
            f"demo: event timestamps shifted by {shift / 86_400_000:+.1f} days "
            "so that the last event is now",
            file=sys.stderr,
        )
        metrics = ProcessMetrics()  # the worker's /metrics serves the whole process
        produced = produce(settings, loaded, metrics)
        return asyncio.run(consume_and_serve(settings, produced, loaded, exit_after, metrics))


def produce(settings: Settings, events: Sequence[Event], metrics: ProcessMetrics) -> int:
    """Send ``events`` through the SDK; returns how many Kinesis accepted. Fails loudly if any
    event could not be delivered."""
    # KPL aggregation packs a shard's events into few records: on moto's two shards the demo
    # would otherwise be paced at Kinesis's real 1,000 records/s per shard. Consumers de-aggregate.
    producer = EventProducer(client("kinesis", settings), settings.stream_name, aggregate=True)
    metrics.producers.add("demo", producer)
    with tqdm(total=len(events), desc="produce", unit="ev", file=sys.stderr) as bar:
        for start in range(0, len(events), PRODUCE_CHUNK):
            chunk = events[start : start + PRODUCE_CHUNK]
            producer.put_many(chunk)
            bar.update(len(chunk))
        result = producer.close()
    if result.failed:
        first = result.failed[0]
        raise SystemExit(f"{len(result.failed)} events not delivered, e.g. {first}")
    return result.sent


async def consume_and_serve(
    settings: Settings,
    produced: int,
    events: Sequence[Event],
    exit_after: bool,
    metrics: ProcessMetrics,
) -> dict[str, Any]:
    """Consume until caught up, summarise, then serve until interrupted (unless ``exit_after``).
    The pipeline's metrics are served by the worker's ``/metrics`` (and on
    ``STREAMREC_METRICS_PORT`` when set)."""
    async with pipeline(settings) as p:
        metrics.add_pipeline(p)
        with serving(settings, metrics):
            return await _consume_and_serve(p, produced, events, exit_after, metrics)


async def _consume_and_serve(
    p: Pipeline, produced: int, events: Sequence[Event], exit_after: bool, metrics: ProcessMetrics
) -> dict[str, Any]:
    settings = p.settings
    await consume(p, produced)
    async with (
        recommender_app(
            settings,
            p.online,
            ItemCatalog.from_events(events),
            s3=p.clients.s3,
            dynamodb=p.clients.dynamodb,
            metrics=metrics,
        ) as app,
        running(app, settings.api_host, settings.api_port) as url,
    ):
        summary = await summarise(p, produced, events, url)
        print(json.dumps(summary), flush=True)
        if not exit_after:
            print(f"serving {url}/recommendations/<user_id>  (Ctrl-C stops)", file=sys.stderr)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    return summary


async def consume(p: Pipeline, produced: int) -> None:
    """Run the embedded runner until every shard is caught up, with a progress bar."""
    with tqdm(total=produced, desc="consume", unit="rec", file=sys.stderr) as bar:
        task = asyncio.create_task(p.runner.run(until_caught_up=True))
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            bar.update(p.runner.stats.events - bar.n)
        task.result()


async def summarise(
    p: Pipeline, produced: int, events: Sequence[Event], url: str
) -> dict[str, Any]:
    """The demo's JSON line: counts from every store, and one user's recommendations."""
    sample_user = events[-1].user_id if events else ""
    recs = await asyncio.to_thread(_get_json, f"{url}/recommendations/{sample_user}?k=10")
    return {
        "events_produced": produced,
        "events_consumed": p.runner.stats.events,
        "records_consumed": p.runner.stats.records,
        "dead_lettered": p.runner.stats.poison,
        "feature_rows": await count_rows(p.clients.dynamodb, p.settings.features_table),
        "feature_rows_written": p.features.stats.rows_written,
        "parquet_rows": len(await p.offline.read_events()),
        "glue_partitions": len(await p.offline.list_partitions()),
        "sample_user": sample_user,
        "sample_recommendations": [r["item_id"] for r in recs["recommendations"]],
        "api": url,
    }


async def count_rows(dynamodb: Any, table: str) -> int:
    """Rows in a DynamoDB table (a paginated COUNT scan)."""
    total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        response = await dynamodb.scan(**kwargs)
        total += response["Count"]
        if "LastEvaluatedKey" not in response:
            return total
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:  # our own loopback API
        return json.load(response)
