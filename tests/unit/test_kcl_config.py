"""The MultiLangDaemon's properties, command and environment, rendered from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import kcl
from infra.settings import Settings

LOCAL = Settings(stream_name="events-x", app_name="app-x", region="eu-west-1").with_endpoint(
    "http://127.0.0.1:5000", kinesis="http://127.0.0.1:4567"
)
CHILD = "/venv/bin/python -m streamrec.kcl_entry"


def test_local_properties_name_each_endpoint_and_turn_metrics_off() -> None:
    props = kcl.properties(LOCAL, executable=CHILD, worker_id="w-1")
    assert props["kinesisEndpoint"] == "http://127.0.0.1:4567"
    assert props["dynamoDBEndpoint"] == props["cloudWatchEndpoint"] == "http://127.0.0.1:5000"
    assert props["metricsLevel"] == "NONE"
    assert (props["streamName"], props["applicationName"]) == ("events-x", "app-x")
    assert (props["regionName"], props["workerId"], props["executableName"]) == (
        "eu-west-1",
        "w-1",
        CHILD,
    )
    assert props["initialPositionInStream"] == "TRIM_HORIZON"
    assert props["failoverTimeMillis"] == str(LOCAL.kcl_failover_time_ms)
    assert props["maxRecords"] == str(LOCAL.get_records_limit)
    assert "leaseAssignmentIntervalMillis" not in props  # the KCL's: twice the failover time
    faster = LOCAL.model_copy(update={"kcl_lease_assignment_interval_ms": 500})
    assert (
        kcl.properties(faster, executable=CHILD, worker_id="w")["leaseAssignmentIntervalMillis"]
        == "500"
    )


def test_on_aws_the_sdk_resolves_the_endpoints() -> None:
    props = kcl.properties(
        Settings(kcl_idle_time_between_reads_ms=250), executable=CHILD, worker_id="w"
    )
    assert not {"kinesisEndpoint", "dynamoDBEndpoint", "cloudWatchEndpoint"} & props.keys()
    assert props["metricsLevel"] == "SUMMARY"
    assert props["idleTimeBetweenReadsInMillis"] == "250"


def test_properties_render_one_line_each_with_backslashes_escaped() -> None:
    text = kcl.render_properties({"executableName": r"C:\py -m x", "streamName": "s"})
    assert text == "executableName = C:\\\\py -m x\nstreamName = s\n"


def test_the_child_environment_rebuilds_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = LOCAL.model_copy(update={"get_records_limit": 20, "kcl_worker_id": "w-9"})
    for name, value in kcl.child_environment(settings).items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings


def test_the_child_environment_leaves_the_ingest_keys_out() -> None:
    settings = Settings(ingest_api_keys="secret")
    assert "STREAMREC_INGEST_API_KEYS" not in kcl.child_environment(settings)


def test_the_daemon_gets_cbor_off_and_dummy_credentials_only_locally() -> None:
    local = kcl.daemon_environment(LOCAL, {"AWS_ACCESS_KEY_ID": "mine"})
    assert local["AWS_CBOR_DISABLE"] == "true"
    assert local["AWS_ACCESS_KEY_ID"] == "mine"  # never overrides what is configured
    assert local["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert "AWS_SECRET_ACCESS_KEY" not in kcl.daemon_environment(Settings(), {})
    emulated = kcl.daemon_environment(Settings(), {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"})
    assert emulated["AWS_SECRET_ACCESS_KEY"] == "testing"


def test_the_command_runs_the_daemon_on_the_written_files() -> None:
    command = kcl.daemon_command("/usr/bin/java", Path("/jars"), Path("/run/kcl"))
    assert command[0] == "/usr/bin/java"
    assert "-Daws.cborEnabled=false" in command
    assert command[command.index("-cp") + 1] == "/jars/*:/run/kcl"
    assert command[command.index(kcl.DAEMON_CLASS) + 1 :] == [
        "--properties-file",
        "/run/kcl/kcl.properties",
        "--log-configuration",
        f"/run/kcl/{kcl.LOGBACK_FILE}",
    ]


def test_write_config_writes_the_properties_and_finds_the_bundled_jars(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kcl.shutil, "which", lambda name: f"/opt/jdk/bin/{name}")  # Java or not
    config = kcl.write_config(
        LOCAL, tmp_path, executable=CHILD, worker_id="w-2", base_environment={}
    )
    assert "workerId = w-2\n" in config.properties_path.read_text()
    assert config.command[0] == "/opt/jdk/bin/java"
    assert (tmp_path / kcl.LOGBACK_FILE).is_file()
    jars = Path(config.command[config.command.index("-cp") + 1].split(":")[0]).parent
    assert any(jars.glob("amazon-kinesis-client-multilang-*.jar"))


def test_without_java_the_error_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(kcl.shutil, "which", lambda name: None)
    with pytest.raises(kcl.KclUnavailable, match="Java"):
        kcl.write_config(LOCAL, tmp_path, executable=CHILD, worker_id="w", base_environment={})
    assert "Java" in (kcl.available() or "")
