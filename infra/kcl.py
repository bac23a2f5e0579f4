"""The Java KCL MultiLangDaemon: its properties rendered from the settings, its command, its jars.

The daemon (KCL 3.x, from the PyPI wheel ``kclpy-ext``: the ``amazon_kclpy`` package with its
jars inside, the ``kcl`` extra) takes leases on the shards in a DynamoDB table named after the
application, and starts one child process per shard it holds (``executableName``: here
``python -m streamrec.kcl_entry``) that speaks the MultiLang protocol on stdin and stdout.
It creates its own tables on ``dynamoDBEndpoint``: the lease table (``applicationName``), a
coordinator state table and a worker metrics table. See ../shared/LOCAL_AWS.md.

The rendering functions are pure; ``write_config`` writes them into a directory, and
``available`` says why the daemon cannot run here (no Java, no ``kclpy-ext``).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.errors import StreamrecError
from infra.settings import Settings

DAEMON_CLASS = "software.amazon.kinesis.multilang.MultiLangDaemon"
PROPERTIES_FILE = "kcl.properties"
# not logback.xml: the multilang jar has one, and two on the classpath make logback chatty
LOGBACK_FILE = "streamrec-logback.xml"
# Without these the Java SDK speaks CBOR to Kinesis, which kinesis-mock does not.
JAVA_OPTIONS = ("-Daws.cborEnabled=false",)
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# The daemon logs to stderr (its stdout carries nothing of ours); lease changes at INFO.
LOGBACK_XML = """\
<configuration>
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <logger name="software.amazon.kinesis" level="INFO"/>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
"""


class KclUnavailable(StreamrecError):
    """The KCL runtime cannot run here: Java or the ``kclpy-ext`` jars are missing."""


@dataclass(frozen=True)
class DaemonConfig:
    """What ``write_config`` wrote: run ``command`` with ``environment`` to start the daemon."""

    properties_path: Path
    command: list[str]
    environment: dict[str, str]


def properties(settings: Settings, *, executable: str, worker_id: str) -> dict[str, str]:
    """The MultiLangDaemon properties of ``settings``, for a daemon whose children run
    ``executable`` (split on spaces by the daemon: no spaces inside its parts)."""
    props = {
        "executableName": executable,
        "streamName": settings.stream_name,
        "applicationName": settings.app_name,
        "workerId": worker_id,
        "regionName": settings.region,
        # the SDK's chain: environment variables, profiles, container and instance roles
        "AwsCredentialsProvider": "DefaultCredentialsProvider",
        "processingLanguage": "python/3.11",
        "initialPositionInStream": "TRIM_HORIZON",
        # polling GetRecords: enhanced fan-out costs per consumer and needs a registration
        "retrievalMode": "POLLING",
        "maxRecords": str(settings.get_records_limit),
        "failoverTimeMillis": str(settings.kcl_failover_time_ms),
        # KCL 3.x's leader assigns leases to every worker whose metrics are fresher than two
        # reports: at the default 30 s a dead worker is handed leases for a minute
        "workerMetricsReporterFreqInMillis": str(settings.kcl_failover_time_ms),
        "idleTimeBetweenReadsInMillis": str(settings.kcl_idle_time_between_reads_ms),
        # empty answers reach the processors too: a buffering lander flushes an idle shard on time
        "callProcessRecordsEvenForEmptyRecordList": "true",
        "shardSyncIntervalMillis": str(settings.kcl_shard_sync_interval_ms),
        "parentShardPollIntervalMillis": str(settings.kcl_parent_shard_poll_interval_ms),
        "shutdownGraceMillis": str(settings.kcl_shutdown_grace_ms),
        "metricsLevel": "NONE" if is_local(settings) else "SUMMARY",
    }
    if settings.kcl_lease_assignment_interval_ms is not None:
        props["leaseAssignmentIntervalMillis"] = str(settings.kcl_lease_assignment_interval_ms)
    for key, service in (
        ("kinesisEndpoint", "kinesis"),
        ("dynamoDBEndpoint", "dynamodb"),
        ("cloudWatchEndpoint", "cloudwatch"),
    ):
        endpoint = settings.endpoint_for(service)
        if endpoint:  # else the Java SDK resolves it (AWS_ENDPOINT_URL_<SERVICE>, then AWS)
            props[key] = endpoint
    return props


def is_local(settings: Settings) -> bool:
    """True when the settings point at emulators (an endpoint of ours is set)."""
    return bool(settings.endpoint_url or settings.service_endpoints)


def render_properties(props: Mapping[str, str]) -> str:
    """``props`` as a Java ``.properties`` file: one ``key = value`` a line, backslashes escaped."""
    lines = [f"{key} = {value.replace(chr(92), chr(92) * 2)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def child_environment(settings: Settings) -> dict[str, str]:
    """The settings as ``STREAMREC_*`` variables, so every child builds exactly these settings.

    The ingest API keys are left out: a record processor has no use for them.
    """
    env: dict[str, str] = {}
    for name, value in settings.model_dump(exclude={"ingest_api_keys"}).items():
        if value is None:
            continue
        # pydantic-settings parses JSON for maps and reads numbers from their text
        env[f"STREAMREC_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def daemon_command(java: str, jars: Path, config_dir: Path) -> list[str]:
    """The ``java`` command line that runs the daemon on the files in ``config_dir``."""
    return [
        java,
        *JAVA_OPTIONS,
        "-cp",
        f"{jars}/*:{config_dir}",
        DAEMON_CLASS,
        "--properties-file",
        str(config_dir / PROPERTIES_FILE),
        "--log-configuration",
        str(config_dir / LOGBACK_FILE),
    ]


def daemon_environment(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus what the daemon and its children need: the settings, CBOR off, and dummy
    credentials on emulators (the settings' or ``AWS_ENDPOINT_URL*``) where none are set: the
    Java SDK insists on some."""
    env = {**base, **child_environment(settings), "AWS_CBOR_DISABLE": "true"}
    if is_local(settings) or any(name.startswith("AWS_ENDPOINT_URL") for name in base):
        env = {**DUMMY_CREDENTIALS, **env}
    return env


def write_config(
    settings: Settings,
    directory: Path,
    *,
    executable: str,
    worker_id: str,
    base_environment: Mapping[str, str],
) -> DaemonConfig:
    """Write the properties and the logging configuration into ``directory``; the daemon's
    command and environment. Raises ``KclUnavailable`` when Java or the jars are missing."""
    command = daemon_command(java(), jars_dir(), directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PROPERTIES_FILE
    path.write_text(
        render_properties(properties(settings, executable=executable, worker_id=worker_id))
    )
    (directory / LOGBACK_FILE).write_text(LOGBACK_XML)
    return DaemonConfig(path, command, daemon_environment(settings, base_environment))


def jars_dir() -> Path:
    """The KCL jars shipped inside ``amazon_kclpy`` (the ``kclpy-ext`` wheel)."""
    spec = importlib.util.find_spec("amazon_kclpy")
    if spec is None or spec.origin is None:
        raise KclUnavailable(
            "the KCL runtime needs the kcl extra: pip install 'streamrec[kcl]' (kclpy-ext)"
        )
    jars = Path(spec.origin).parent / "jars"
    if not any(jars.glob("amazon-kinesis-client-multilang-*.jar")):
        raise KclUnavailable(
            f"no KCL jars in {jars}: install kclpy-ext (amazon-kclpy alone ships none)"
        )
    return jars


def java() -> str:
    """The ``java`` executable (Java 17 or newer runs KCL 3.x)."""
    found = shutil.which("java")
    if found is None:
        raise KclUnavailable("the KCL runtime needs Java 17+ (java) on the PATH")
    return found


def available() -> str | None:
    """None when the daemon can run here, else why not (for an error or a test's skip reason)."""
    try:
        java()
        jars_dir()
    except KclUnavailable as exc:
        return str(exc)
    return None
