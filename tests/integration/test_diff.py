"""``streamrec infra diff`` on the embedded moto: what apply would change, and the exit code."""

from __future__ import annotations

import pytest

from infra.apply import apply
from infra.clients import client
from infra.diff import plan
from infra.environments import environment
from infra.settings import Settings
from streamrec.cli import main


def _run(settings: Settings, monkeypatch: pytest.MonkeyPatch, *options: str) -> int:
    """The command, with the settings given to it the way a user would: as variables."""
    for name in ("endpoint_url", "stream_name", "features_table", "checkpoints_table", "bucket"):
        monkeypatch.setenv(f"STREAMREC_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("STREAMREC_GLUE_DATABASE", settings.glue_database)
    return main(["infra", "diff", *options])


def test_nothing_to_change_after_apply_exits_0(applied: Settings, monkeypatch, capsys) -> None:
    assert plan(applied) == []
    assert _run(applied, monkeypatch) == 0
    assert capsys.readouterr().out.strip() == "no changes"


def test_on_an_empty_endpoint_everything_would_be_created(settings: Settings) -> None:
    changes = [str(c) for c in plan(settings)]
    assert changes == [
        f"+ stream {settings.stream_name}: {settings.stream_shards} shards",
        f"+ table {settings.features_table}: TTL on expires_at",
        f"+ table {settings.checkpoints_table}",
        f"+ bucket {settings.bucket}",
        f"+ glue database {settings.glue_database}",
        f"+ glue table {settings.glue_database}.events: 9 columns",
    ]
    apply(settings)
    assert plan(settings) == []


def test_a_dropped_table_is_reported_and_exits_1(applied: Settings, monkeypatch, capsys) -> None:
    client("dynamodb", applied).delete_table(TableName=applied.checkpoints_table)
    assert _run(applied, monkeypatch) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"+ table {applied.checkpoints_table}", "1 change(s)"]
    apply(applied)
    assert plan(applied) == []


def test_ttl_off_is_an_update_and_a_changed_glue_column_differs(applied: Settings) -> None:
    dynamodb, glue = client("dynamodb", applied), client("glue", applied)
    dynamodb.update_time_to_live(
        TableName=applied.features_table,
        TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"},
    )
    table = glue.get_table(DatabaseName=applied.glue_database, Name="events")["Table"]
    columns = table["StorageDescriptor"]["Columns"]
    columns[-1]["Type"] = "int"  # schema_version
    columns.append({"Name": "extra", "Type": "string"})
    glue.update_table(
        DatabaseName=applied.glue_database,
        TableInput={
            "Name": "events",
            "StorageDescriptor": table["StorageDescriptor"],
            "PartitionKeys": table["PartitionKeys"],
        },
    )
    changes = [str(c) for c in plan(applied)]
    last = columns[-2]["Name"]
    assert changes == [
        f"~ table {applied.features_table}: enable TTL on expires_at",
        f"! glue table {applied.glue_database}.events: column {last} is int, defined bigint",
        f"! glue table {applied.glue_database}.events: column extra string not defined",
    ]


def test_prod_shape_applies_and_then_has_nothing_to_change(
    settings: Settings, monkeypatch, capsys
) -> None:
    prod = environment("prod")
    apply(settings, environment=prod)
    backups = client("dynamodb", settings).describe_continuous_backups(
        TableName=settings.features_table
    )
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    assert _run(settings, monkeypatch, "--env", "prod") == 0
    assert _run(settings, monkeypatch) == 1  # prod has 8 shards, the local definition 2
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        f"! stream {settings.stream_name}: 8 open shards, defined 2 (apply does not reshard)",
        "1 change(s)",
    ]
