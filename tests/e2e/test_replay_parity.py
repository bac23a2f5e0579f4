"""Online features rebuilt by ``streamrec replay --into-features`` equal the live ones.

Events go through the SDK onto the stream and are consumed live by the embedded runner (features
in DynamoDB, Parquet in the lake); then the lake's range is replayed into a second, fresh features
table and every row's features are compared (versions, high-water marks and recent items'
positions aside: ``streamrec.rowdiff``). Per-user timestamps are distinct, so the replay order
of each user's events is the live one. Items are at most ``COVIS_TOP_K``: past that bound the
co-visitation lists depend on batching, live or replayed (docs/decisions/0006).
"""

from __future__ import annotations

import asyncio

import pytest

from feature_store.features import COVIS_TOP_K
from infra.apply import apply
from infra.clients import client
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.cli import main
from streamrec.rowdiff import compare, features_by_key, scan_items
from streamrec.wiring import pipeline

EVENTS = 1_500
CATCH_UP_DEADLINE_SECONDS = 120


async def _consume_live(settings: Settings) -> int:
    async with pipeline(settings) as p:
        await asyncio.wait_for(p.runner.run(until_caught_up=True), CATCH_UP_DEADLINE_SECONDS)
        return p.runner.stats.events


def test_features_rebuilt_by_replay_equal_the_live_ones(
    applied: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    events = synthetic_events(EVENTS, users=30, items=COVIS_TOP_K, seed=21)
    with EventProducer(client("kinesis", applied), applied.stream_name, aggregate=True) as p:
        p.put_many(events)
    assert asyncio.run(_consume_live(applied)) == EVENTS

    rebuilt = applied.model_copy(update={"features_table": f"{applied.features_table}-replay"})
    apply(rebuilt)  # the second features table, created as for the live one
    for name, value in rebuilt.model_dump().items():
        if value is not None:
            monkeypatch.setenv(f"STREAMREC_{name.upper()}", str(value))
    first, last = events[0].timestamp, events[-1].timestamp
    argv = ["replay", "--from", str(first), "--to", str(last + 1), "--into-features"]
    # the lake is partitioned by arrival (now), years after these event times
    assert main([*argv, "--max-lateness", "none", "--batch-size", "400"]) == 0
    assert f"replayed {EVENTS} events into features table {rebuilt.features_table}" in (
        capsys.readouterr().err
    )

    dynamodb = client("dynamodb", applied)
    live = features_by_key(scan_items(dynamodb, applied.features_table))
    replayed = features_by_key(scan_items(dynamodb, rebuilt.features_table))
    assert len(live) > 100  # users, items and the popularity row
    comparison = compare(live, replayed)
    assert comparison.identical, [m.as_dict() for m in comparison.mismatches[:3]]
