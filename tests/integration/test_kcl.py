"""The KCL runtime on kinesis-mock and moto: two workers share the shards (one of them is split
while they work), one is SIGKILLed, the survivor takes its leases over, the features are exact.

Exact means equal, row by row, to the features the embedded runner's decoding of the same
records gives (one batch per shard, the parent first, into another table); and every per-shard
high-water mark is a position that decoding gives a record, so the two runtimes can take turns
on one table. Part of the events are plain records, the rest KPL-aggregated, which the KCL
splits itself (sub-sequence numbers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from consumers.features import FeatureProcessor
from consumers.processor import Batch
from consumers.runner import decode
from feature_store.features import COVIS_TOP_K
from feature_store.online import OnlineStore
from feature_store.rows import decode as decode_row
from infra.apply import apply
from infra.clients import async_client, client
from infra.kcl import child_environment
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.chaos import named
from streamrec.chaos import produce as produce_aggregated
from streamrec.rowdiff import compare, features_by_key, scan_items
from tests.streams import read_records, wait_active

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None, reason="the KCL runtime needs Java 17+ (java) on the PATH"
)

EVENTS, USERS, PLAIN = 2_000, 300, 400  # the first 400 events plain records, then aggregates
WORKERS = ("worker-a", "worker-b")
KCL_SETTINGS = {
    "stream_shards": 4,
    "get_records_limit": 20,  # a few batches per shard: the kill lands with work in hand
    "kcl_failover_time_ms": 3_000,
    "kcl_lease_assignment_interval_ms": 1_000,  # new and expired leases assigned within a second
    "kcl_idle_time_between_reads_ms": 100,
    # after a reshard one shard consumer never reports its shutdown done: SIGTERM takes it all
    "kcl_shutdown_grace_ms": 5_000,
    "kcl_shard_sync_interval_ms": 2_000,
    "kcl_parent_shard_poll_interval_ms": 500,
}
# seconds, for each wait; the whole test takes about a minute, but on a slow day under the full
# suite the survivor once took over 2 minutes to finish the parent shard after the failover
DEADLINE = 240.0
POLL = 0.2


@pytest.fixture
def kcl_settings(settings: Settings, stack_url: str, kinesis_mock_url: str) -> Settings:
    """Fresh names on kinesis-mock (Kinesis) and moto (the rest), 4 shards, fast failover."""
    kcl = settings.model_copy(update=KCL_SETTINGS).with_endpoint(
        stack_url, kinesis=kinesis_mock_url
    )
    apply(kcl)
    return kcl


@pytest.fixture
def daemons(kcl_settings: Settings, tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """``streamrec consume --runtime kcl`` per worker, each in its own process group (CLI, java,
    shard processes); every group is SIGKILLed at the end, and must be empty after."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("STREAMREC_", "AWS_ENDPOINT"))
    } | child_environment(kcl_settings)
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for worker in WORKERS:
            command = [sys.executable, "-m", "streamrec.cli", "consume", "--runtime", "kcl"]
            log = (tmp_path / f"{worker}.log").open("wb")
            started[worker] = subprocess.Popen(
                [*command, "--worker-id", worker],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        yield started
    finally:
        for process in started.values():
            _kill_group(process)
        for process in started.values():
            wait_for(lambda p=process: not _group_alive(p.pid), "the daemon's processes to end")


async def test_two_workers_share_the_shards_and_one_dies_the_features_stay_exact(
    kcl_settings: Settings, daemons: dict[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    events = synthetic_events(EVENTS, users=USERS, items=COVIS_TOP_K, seed=8)
    kinesis, dynamodb = client("kinesis", kcl_settings), client("dynamodb", kcl_settings)
    plain = EventProducer(kinesis, kcl_settings.stream_name)
    plain.put_many(events[:PLAIN], results=False)
    assert not plain.close().failed
    leases = lambda: _leases(dynamodb, kcl_settings.app_name)  # noqa: E731

    wait_for(lambda: {owner for owner, _ in leases().values()} == set(WORKERS), "both to lease")
    # resharding while they work; aggregates last, so each shard's last batch ends inside one
    parent = _split_first_shard(kinesis, kcl_settings.stream_name)
    produce_aggregated(kcl_settings, events[PLAIN:])
    records = read_records(kinesis, kcl_settings.stream_name)
    ends = {shard: rs[-1]["SequenceNumber"] for shard, rs in records.items()}
    assert len(ends) == 6  # the closed parent, its two children, the three others
    ends[parent] = "SHARD_END"  # the checkpoint the KCL needs before it reads the children
    # KCL 3.x assigns leases from one leader, elected with a DynamoDB lock held for 2 minutes
    # (fixed in 3.1.3): a dead leader's leases wait that long, so the follower is killed
    leader = _leader(dynamodb, kcl_settings.app_name)
    survivor, victim = leader, next(w for w in WORKERS if w != leader)
    wait_for(lambda: _worked(leases(), victim), f"{victim} to checkpoint", daemons, tmp_path)
    _kill_group(daemons[victim])
    unfinished = [s for s, (o, cp) in leases().items() if o == victim and cp != ends[s]]
    assert unfinished, "the kill came after the victim's last batch: nothing was taken over"

    done = lambda: _finished(leases(), ends, survivor, parent)  # noqa: E731
    wait_for(done, f"{survivor} to finish every shard", daemons, tmp_path)
    daemons[survivor].send_signal(signal.SIGTERM)  # the CLI passes it on: a graceful stop
    wait_for(lambda: daemons[survivor].poll() is not None, "the survivor to stop on SIGTERM")

    expected = named(kcl_settings.with_endpoint(kcl_settings.endpoint_url or ""), "expected")
    apply(expected)
    await _embedded_features(expected, records, parent)
    actual_items = list(scan_items(dynamodb, kcl_settings.features_table))
    expected_items = list(scan_items(dynamodb, expected.features_table))
    result = compare(features_by_key(expected_items), features_by_key(actual_items))
    assert result.rows_compared > USERS
    assert result.identical, [m.as_dict() for m in result.mismatches[:3]]
    # every high-water mark is a position the embedded runner's decoding gives a record of that
    # shard, user records of aggregates (``<sequence>:<sub>``) included
    positions = {s: {e.mark for e in decode(s, rs)[0]} for s, rs in records.items()}
    marks = [
        (shard, mark) for row in map(decode_row, actual_items) for shard, mark in row.marks.items()
    ]
    assert all(mark in positions[shard] for shard, mark in marks)
    assert any(":" in mark for _, mark in marks)


def _split_first_shard(kinesis: Any, stream: str) -> str:
    """Split the stream's first shard in two; its id (the parent, closed now).

    Only once the KCL has its leases: kinesis-mock's ``ShardFilter=AT_TRIM_HORIZON`` lists the
    children along with their parent (AWS lists the parent alone), and the KCL refuses to
    create the first leases of a stream whose shards overlap (docs/decisions/0008).
    """
    parent = kinesis.list_shards(StreamName=stream)["Shards"][0]
    hashes = parent["HashKeyRange"]
    middle = (int(hashes["StartingHashKey"]) + int(hashes["EndingHashKey"])) // 2
    kinesis.split_shard(
        StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(middle)
    )
    wait_active(kinesis, stream)
    return str(parent["ShardId"])


def _finished(
    leases: dict[str, tuple[str | None, str | None]],
    ends: dict[str, str],
    owner: str,
    parent: str,
) -> bool:
    """Every shard checkpointed at its end, the open ones by ``owner``; the parent's lease may
    already be deleted (the KCL cleans up the leases of finished parents)."""
    return all(
        leases.get(shard, (None, end))[1] == end
        if shard == parent
        else leases.get(shard) == (owner, end)
        for shard, end in ends.items()
    )


async def _embedded_features(
    settings: Settings, records: dict[str, list[dict[str, Any]]], parent: str
) -> None:
    """The features of ``records`` decoded as the embedded runner decodes them, a batch a shard,
    the parent first (a user's events in it come before those in its children)."""
    async with async_client("dynamodb", settings) as dynamodb:
        processor = FeatureProcessor(OnlineStore(dynamodb, settings.features_table))
        for shard in sorted(records, key=lambda shard: shard != parent):
            events, poison = decode(shard, records[shard])
            assert not poison
            await processor.process_records(Batch(shard, events))


def _leases(dynamodb: Any, table: str) -> dict[str, tuple[str | None, str | None]]:
    """The lease table: shard id -> (owner, checkpointed sequence number); {} before it exists."""
    try:
        items = list(scan_items(dynamodb, table))
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return {}
        raise
    return {
        item["leaseKey"]["S"]: (
            item.get("leaseOwner", {}).get("S"),
            item.get("checkpoint", {}).get("S"),
        )
        for item in items
    }


def _worked(leases: dict[str, tuple[str | None, str | None]], worker: str) -> bool:
    """True when ``worker`` checkpointed at least one batch (a checkpoint past TRIM_HORIZON)."""
    return any(owner == worker and cp and cp[0].isdigit() for owner, cp in leases.values())


def _leader(dynamodb: Any, app_name: str) -> str:
    """The worker holding the KCL's leader lock (in the coordinator state table)."""
    items = scan_items(dynamodb, f"{app_name}-CoordinatorState")
    (owner,) = [i["ownerName"]["S"] for i in items if i.get("key", {}).get("S") == "Leader"]
    return str(owner)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    daemons: dict[str, subprocess.Popen[bytes]] | None = None,
    logs: Path | None = None,
) -> None:
    """Poll ``condition`` until it holds, failing after ``DEADLINE`` (with the daemons' log
    tails) or as soon as a daemon that should be running has exited."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        exited = [w for w, p in (daemons or {}).items() if p.poll() not in (None, -signal.SIGKILL)]
        if exited or time.monotonic() > deadline:
            tails = {w: _tail(logs / f"{w}.log") for w in WORKERS} if logs else {}
            pytest.fail(f"waiting for {what}: exited {exited}, {tails}")
        time.sleep(POLL)  # polling other processes, under the deadline


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(path: Path, chars: int = 3_000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
