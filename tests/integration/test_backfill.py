"""Replay into the features on moto: resumable after an injected failure, refused when the
range changed, idempotent when complete."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from consumers.features import FeatureProcessor
from consumers.processor import Batch
from feature_store.transforms import Sequenced
from infra.apply import apply
from infra.clients import client
from infra.errors import ServiceError
from infra.settings import Settings
from producers.events import Event
from producers.synthetic import synthetic_events
from streamrec.backfill import run_backfill
from streamrec.rowdiff import compare, features_by_key, scan_items
from streamrec.wiring import offline_store

EVENTS = 300
BATCH = 50
START_MS, END_MS = 1_699_000_000_000, 1_701_000_000_000  # around synthetic_events' start


def _land(settings: Settings, events: list[Event], shard: str = "shardId-000000000000") -> None:
    """Write ``events`` to the lake as the lander would, arriving at their event time (objects
    are named by their first record: land more under another ``shard``)."""

    async def write() -> None:
        async with offline_store(settings) as offline:
            records = [Sequenced(e, shard, str(n + 1), e.timestamp) for n, e in enumerate(events)]
            await offline.write_events(records)

    asyncio.run(write())


def _second_table(settings: Settings, name: str) -> Settings:
    """``settings`` with a fresh features table of its own, created as ``apply`` does."""
    other = settings.model_copy(update={"features_table": f"{settings.features_table}-{name}"})
    apply(other)
    return other


def _replay(settings: Settings, err: Any, **options: Any) -> int:
    kwargs = {"start_ms": START_MS, "end_ms": END_MS, "max_lateness_ms": None}
    return run_backfill(settings, batch_size=BATCH, err=err, **(kwargs | options))


class FailingAfter(FeatureProcessor):
    """The feature processor, failing (before writing) on batch number ``FAIL_AT``."""

    FAIL_AT = 3
    batches = 0

    async def process_records(self, batch: Batch) -> None:
        if type(self).batches == self.FAIL_AT:
            type(self).batches += 1
            raise ServiceError("PutItem", "InternalServerError", "injected failure")
        type(self).batches += 1
        await super().process_records(batch)


@pytest.fixture
def landed(applied: Settings) -> Settings:
    _land(applied, synthetic_events(EVENTS, users=12, items=60, seed=3))
    return applied


def test_an_interrupted_replay_resumes_and_ends_equal_to_an_uninterrupted_one(
    landed: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = _second_table(landed, "clean")
    assert _replay(clean, None) == 0
    summary = capsys.readouterr().err
    assert "warning" not in summary and "resuming" not in summary
    assert f"replayed {EVENTS} events into features table {clean.features_table}" in summary
    assert "writes/event" in summary

    monkeypatch.setattr("streamrec.backfill.FeatureProcessor", FailingAfter)
    assert _replay(landed, None) == 1
    err = capsys.readouterr().err
    stopped_at = FailingAfter.FAIL_AT * BATCH
    assert f"stopped after {stopped_at} of {EVENTS} events" in err
    assert "injected failure" in err and "rerun the same command to resume" in err

    assert _replay(landed, None) == 0  # FailingAfter fails only once
    err = capsys.readouterr().err
    assert f"resuming at event {stopped_at} of {EVENTS}" in err
    assert f"replayed {EVENTS - stopped_at} events" in err

    dynamodb = client("dynamodb", landed)
    expected = features_by_key(scan_items(dynamodb, clean.features_table))
    actual = features_by_key(scan_items(dynamodb, landed.features_table))
    assert expected and compare(expected, actual).identical

    # complete: a rerun says so and writes nothing; --restart re-applies as no-ops
    assert _replay(landed, None) == 0
    assert f"already complete: all {EVENTS} events" in capsys.readouterr().err
    assert _replay(landed, None, restart=True) == 0
    assert f"replayed {EVENTS} events" in capsys.readouterr().err
    again = features_by_key(scan_items(dynamodb, landed.features_table))
    assert compare(expected, again).identical


def test_a_changed_range_is_refused_unless_restarted(
    landed: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _replay(landed, None) == 0
    extra = synthetic_events(1, users=1, items=1, seed=99)
    _land(landed, extra, shard="shardId-000000000001")
    assert _replay(landed, None) == 1
    err = capsys.readouterr().err
    assert f"({EVENTS} events then, {EVENTS + 1} now" in err and "--restart" in err
    assert _replay(landed, None, restart=True) == 0
    assert "warning" not in capsys.readouterr().err  # its rows came from this very replay
    # another range into a table with rows: they may have come from the live stream
    assert _replay(landed, None, end_ms=END_MS + 1) == 0
    assert f"warning: features table {landed.features_table!r} already holds rows" in (
        capsys.readouterr().err
    )


def test_a_missing_features_table_and_an_empty_range_are_named(
    landed: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = landed.model_copy(update={"features_table": "no-such-table"})
    assert _replay(missing, None) == 2
    assert "features table 'no-such-table' does not exist" in capsys.readouterr().err
    assert _replay(landed, None, start_ms=START_MS - 10, end_ms=START_MS - 5) == 1
    assert "no events with event time in" in capsys.readouterr().err
