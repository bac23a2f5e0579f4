"""Observability after a short end-to-end run on the embedded stack: every metric the issue names
is on the consumer's endpoint or the worker's ``/metrics`` with a value that fits the run, and
``streamrec status`` shows the shards' checkpoints, lag and throughput.

The run: 300 events through the SDK (one of them refused by Kinesis until the producer gives up,
so failures and retries show), two poison records, the embedded consumer until
caught up (its collectors served on a metrics port, with the SDK producer's as in the demo),
then the worker: two identical requests (a miss, then a hit) and three events over HTTP ingest.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from infra.clients import client
from infra.settings import Settings
from models.worker import running
from producers.events import Event
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from producers.testing.faults import INTERNAL, FaultInjectingKinesis
from streamrec.cli import main
from streamrec.observability import ProcessMetrics, serving
from streamrec.wiring import pipeline, recommender_app

EVENTS = 300
ATTEMPTS = 3  # the producer's: the doomed event is retried twice, then given up
CATCH_UP_DEADLINE_SECONDS = 90
KEY = "obs-key"

# the metrics of the issue, by where they are: consumer process / worker
CONSUMER_FAMILIES = {
    "streamrec_producer_events_sent",  # producer sends
    "streamrec_producer_events_failed",  # producer failures
    "streamrec_producer_events_retried",
    "streamrec_shard_behind_latest_seconds",  # per-shard lag
    "streamrec_shard_iterator_age_seconds",  # per-shard iterator age
    "streamrec_shard_checkpoint_age_seconds",
    "streamrec_consumer_records",  # records in
    "streamrec_consumer_events",
    "streamrec_processor_events_in",  # per processor in/out
    "streamrec_processor_events_out",
    "streamrec_dead_letters",  # dead letters
    "streamrec_feature_write_conflicts",  # conditional-write conflicts
    "streamrec_feature_rows_written",
    "streamrec_feature_write_seconds",  # feature write latency
    "streamrec_lake_objects_written",
}
WORKER_FAMILIES = {
    "streamrec_cache_hit_ratio",  # cache hit ratio
    "streamrec_cache_lookups",
    "streamrec_request_seconds",  # request latency histogram
    "streamrec_producer_events_sent",  # the ingest producer's sends
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doomed(_call: int, entry: Mapping[str, Any]) -> str | None:
    """Kinesis refuses the event ``e-doomed`` every time."""
    return INTERNAL if b'"e-doomed"' in entry["Data"] else None


def produce(settings: Settings, events: list[Event], metrics: ProcessMetrics) -> None:
    kinesis = FaultInjectingKinesis(client("kinesis", settings), doomed)
    producer = EventProducer(kinesis, settings.stream_name, max_attempts=ATTEMPTS, base_delay=0.01)
    metrics.producers.add("sdk", producer)
    producer.put_many(events)
    failed = producer.close().failed
    assert [f.event_id for f in failed] == ["e-doomed"]
    client("kinesis", settings).put_records(
        StreamName=settings.stream_name,
        Records=[
            {"Data": b"{not json", "PartitionKey": "p1"},
            {"Data": b"[]", "PartitionKey": "p2"},
        ],
    )


def scrape(url: str) -> dict[str, Any]:
    text = httpx.get(url, timeout=10).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def values(family: Any, sample: str, **labels: str) -> list[float]:
    """The values of ``family``'s samples named ``sample`` whose labels include ``labels``."""
    return [
        s.value
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]


@pytest.fixture
def obs_settings(applied: Settings) -> Settings:
    # the run ends inside one throughput window (1 to 2 renewal intervals): its rate is > 0
    return applied.model_copy(
        update={
            "ingest_api_keys": SecretStr(KEY),
            "metrics_port": free_port(),
            "failover_time": 90.0,
            "lease_renewal_interval": 30.0,
        }
    )


async def test_every_metric_is_exposed_after_a_short_run(
    obs_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = obs_settings
    events = synthetic_events(EVENTS - 1, users=30, items=60, seed=3)
    last = events[-1].timestamp
    events.append(
        Event(event_id="e-doomed", user_id="u", item_id="i", event_type="view", timestamp=last)
    )
    metrics = ProcessMetrics()  # the consumer process's registry, the SDK producer in it
    await asyncio.to_thread(produce, settings, events, metrics)

    async with pipeline(settings) as p:
        metrics.add_pipeline(p)
        with serving(settings, metrics) as consumer_url:
            assert consumer_url == f"http://127.0.0.1:{settings.metrics_port}/metrics"
            await asyncio.wait_for(p.runner.run(until_caught_up=True), CATCH_UP_DEADLINE_SECONDS)
            consumer = await asyncio.to_thread(scrape, consumer_url)
        user = events[0].user_id
        async with (
            recommender_app(settings, p.online) as app,
            running(app) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            first = await http.get(f"/recommendations/{user}", headers={"X-Request-ID": "req-1"})
            second = await http.get(f"/recommendations/{user}")
            batch = [json.loads(e.to_json()) for e in synthetic_events(3, users=2, items=5, seed=9)]
            posted = await http.post("/events", json=batch, headers={"X-API-Key": KEY})
            worker = scrape_text((await http.get("/metrics")).text)

    assert (first.status_code, second.status_code, posted.status_code) == (200, 200, 202)
    assert (first.json()["cached"], second.json()["cached"]) == (False, True)
    assert first.headers["X-Request-ID"] == "req-1"
    assert len(second.headers["X-Request-ID"]) == 32  # made up for a request without one

    assert consumer.keys() >= CONSUMER_FAMILIES, CONSUMER_FAMILIES - consumer.keys()
    assert worker.keys() >= WORKER_FAMILIES, WORKER_FAMILIES - worker.keys()
    produced = EVENTS - 1  # all but the doomed one
    sdk = {"producer": "sdk"}
    assert values(
        consumer["streamrec_producer_events_sent"], "streamrec_producer_events_sent_total", **sdk
    ) == [produced]
    assert values(
        consumer["streamrec_producer_events_failed"],
        "streamrec_producer_events_failed_total",
        **sdk,
    ) == [1]
    assert values(
        consumer["streamrec_producer_events_retried"],
        "streamrec_producer_events_retried_total",
        **sdk,
    ) == [ATTEMPTS - 1]

    shards = {s.labels["shard"] for s in consumer["streamrec_consumer_records"].samples}
    assert len(shards) == settings.stream_shards
    assert (
        sum(values(consumer["streamrec_consumer_records"], "streamrec_consumer_records_total"))
        == produced + 2
    )
    assert (
        sum(values(consumer["streamrec_consumer_events"], "streamrec_consumer_events_total"))
        == produced
    )
    assert sum(values(consumer["streamrec_dead_letters"], "streamrec_dead_letters_total")) == 2
    lag = values(
        consumer["streamrec_shard_behind_latest_seconds"], "streamrec_shard_behind_latest_seconds"
    )
    assert lag == [0.0] * len(shards)  # caught up
    ages = values(
        consumer["streamrec_shard_iterator_age_seconds"], "streamrec_shard_iterator_age_seconds"
    )
    assert len(ages) == len(shards) and all(a >= 0 for a in ages)
    checkpoint_ages = values(
        consumer["streamrec_shard_checkpoint_age_seconds"], "streamrec_shard_checkpoint_age_seconds"
    )
    assert len(checkpoint_ages) == len(shards) and all(0 <= a < 60 for a in checkpoint_ages)
    for processor in ("features", "lander"):
        ins = values(
            consumer["streamrec_processor_events_in"],
            "streamrec_processor_events_in_total",
            processor=processor,
        )
        outs = values(
            consumer["streamrec_processor_events_out"],
            "streamrec_processor_events_out_total",
            processor=processor,
        )
        assert (ins, outs) == ([produced], [produced]), processor
    # the two shards' writes meet on shared item rows: conflicts happen, the count is the stats'
    stats = p.features.stats
    conflicts = consumer["streamrec_feature_write_conflicts"]
    assert values(conflicts, "streamrec_feature_write_conflicts_total") == [stats.write_conflicts]
    rows = consumer["streamrec_feature_rows_written"]
    assert values(rows, "streamrec_feature_rows_written_total") == [stats.rows_written]
    assert stats.rows_written > 0
    writes = consumer["streamrec_feature_write_seconds"]
    (count,) = values(writes, "streamrec_feature_write_seconds_count")
    (total,) = values(writes, "streamrec_feature_write_seconds_sum")
    buckets = values(writes, "streamrec_feature_write_seconds_bucket")
    assert count > 0 and total > 0 and buckets == sorted(buckets) and buckets[-1] == count
    assert (
        values(consumer["streamrec_lake_objects_written"], "streamrec_lake_objects_written_total")[
            0
        ]
        > 0
    )

    assert values(worker["streamrec_cache_hit_ratio"], "streamrec_cache_hit_ratio") == [0.5]
    route = {"route": "/recommendations/{user_id}", "status": "200"}
    assert values(
        worker["streamrec_request_seconds"], "streamrec_request_seconds_count", **route
    ) == [2]
    latency = values(worker["streamrec_request_seconds"], "streamrec_request_seconds_sum", **route)
    assert 0 < latency[0] < 2 * CATCH_UP_DEADLINE_SECONDS
    assert values(
        worker["streamrec_producer_events_sent"],
        "streamrec_producer_events_sent_total",
        producer="ingest",
    ) == [3]

    # streamrec status, after the consumer released its leases: what it last reported
    monkeypatch.setenv("STREAMREC_ENDPOINT_URL", settings.endpoint_url or "")
    for name in ("stream_name", "checkpoints_table", "app_name"):
        monkeypatch.setenv(f"STREAMREC_{name.upper()}", getattr(settings, name))
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["stream"] == settings.stream_name
    assert {s["shard_id"] for s in status["shards"]} == shards
    for shard in status["shards"]:
        assert shard["owner"] is None and shard["checkpoint"] and not shard["closed"]
        assert 0 <= shard["checkpoint_age_s"] < 60 and 0 <= shard["reported_age_s"] < 60
        assert shard["millis_behind_latest"] == 0 and shard["events_per_second"] > 0
    assert await asyncio.to_thread(main, ["status"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["shard", "owner"]
    assert sorted(line.split()[0] for line in table[1:-1]) == sorted(shards)
    assert table[-1].startswith(f"{len(shards)} shards, 0 leased")


def scrape_text(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_status_of_a_stream_that_does_not_exist_exits_2(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamrec.status import run_status

    assert run_status(settings) == 2
    assert "does not exist" in capsys.readouterr().err
