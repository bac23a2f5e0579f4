"""``streamrec sql`` against moto: DuckDB over the Glue table's Parquet, read through pyarrow S3."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime

import pytest

from feature_store.transforms import Sequenced
from infra.settings import Settings
from producers.events import Event
from streamrec.cli import main
from streamrec.wiring import offline_store

HOUR_10 = int(datetime(2024, 5, 1, 10, 30, tzinfo=UTC).timestamp() * 1000)
HOUR_11 = int(datetime(2024, 5, 1, 11, 30, tzinfo=UTC).timestamp() * 1000)


def _event(n: int, event_type: str, **extra: object) -> Event:
    raw = {"event_id": f"e{n}", "user_id": f"u{n % 2}", "item_id": f"i{n}"}
    return Event.parse({**raw, "event_type": event_type, "timestamp": HOUR_10 - n, **extra})


def _setenv(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings.model_dump().items():
        if value is not None:
            monkeypatch.setenv(f"STREAMREC_{name.upper()}", str(value))


@pytest.fixture
def lake(applied: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``applied`` with five events in two arrival hours, named by the environment."""
    landed = [
        (_event(1, "view"), HOUR_10),
        (_event(2, "click", context={"page": "home"}), HOUR_10 + 1),
        (_event(3, "view"), HOUR_10 + 2),
        (_event(4, "rating", value=4.5), HOUR_11),
        (_event(5, "view"), HOUR_11 + 1),
    ]

    async def write() -> None:
        async with offline_store(applied) as offline:
            await offline.write_events(
                [Sequenced(e, "shardId-0", str(n), a) for n, (e, a) in enumerate(landed, 1)]
            )

    asyncio.run(write())
    _setenv(applied, monkeypatch)
    return applied


def test_a_group_by_over_the_glue_table_prints_a_table(
    lake: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "select event_type, count(*) as n from events group by 1 order by n desc, 1"
    assert main(["sql", sql]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["event_type", "n"]
    assert [line.split() for line in lines[2:-1]] == [
        ["view", "3"],
        ["click", "1"],
        ["rating", "1"],
    ]
    assert lines[-1] == "(3 rows)"


def test_partition_keys_are_columns_and_the_database_qualifies_the_view(
    lake: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = (
        f"select dt, hour, count(*) as n, max(value) as top from {lake.glue_database}.events "
        "group by all order by hour"
    )
    assert main(["sql", sql, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        {"dt": "2024-05-01", "hour": "10", "n": 3, "top": None},
        {"dt": "2024-05-01", "hour": "11", "n": 2, "top": 4.5},
    ]


def test_csv_output_has_a_header_and_empty_nulls(
    lake: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "select event_id, context, value from events where hour = '10' order by event_id"
    assert main(["sql", sql, "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [
        ["event_id", "context", "value"],
        ["e1", "", ""],
        ["e2", '{"page":"home"}', ""],
        ["e3", "", ""],
    ]


def test_a_bad_query_exits_1_naming_duckdbs_error(
    lake: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "select nope from events"]) == 1
    assert "nope" in capsys.readouterr().err


def test_a_missing_table_exits_2_saying_how_to_create_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _setenv(settings, monkeypatch)  # resources never applied
    assert main(["sql", "select 1"]) == 2
    err = capsys.readouterr().err
    assert f"Glue table {settings.glue_database}.events not found" in err
    assert "streamrec infra apply" in err


def test_an_empty_lake_answers_zero_rows(
    applied: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _setenv(applied, monkeypatch)
    assert main(["sql", "select count(*) as n from events", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 0}
