"""``streamrec status``'s rows and table from ListShards and the lease rows (no AWS here)."""

from __future__ import annotations

from consumers.checkpoints import SHARD_END
from consumers.leases import Lease, ShardReport
from consumers.status import format_age, shard_statuses, status_table

NOW = 1_000_000_000


def shard(shard_id: str, closed: bool = False) -> dict:
    numbers = {"StartingSequenceNumber": "1"} | ({"EndingSequenceNumber": "9"} if closed else {})
    return {"ShardId": shard_id, "SequenceNumberRange": numbers}


def test_rows_join_the_stream_shards_and_the_leases() -> None:
    leases = [
        Lease(
            "s-1",
            "host:1",
            7,
            checkpoint="420",
            checkpointed_ms=NOW - 2_500,
            report=ShardReport(1_200, 812.4, NOW - 1_000),
        ),
        Lease("s-0", None, 3, checkpoint=SHARD_END, checkpointed_ms=NOW - 3_600_000),
        Lease("s-gone", None, 2, checkpoint="5"),  # its shard left the stream's retention
    ]
    rows = shard_statuses([shard("s-0", closed=True), shard("s-1"), shard("s-2")], leases, NOW)
    assert [r.shard_id for r in rows] == ["s-0", "s-1", "s-2", "s-gone"]
    s0, s1, s2, gone = rows
    assert (s0.closed, s0.owner, s0.checkpoint, s0.checkpoint_age_s) == (
        True,
        None,
        SHARD_END,
        3600,
    )
    assert s0.millis_behind_latest is None and s0.reported_age_s is None
    assert (s1.owner, s1.checkpoint, s1.checkpoint_age_s) == ("host:1", "420", 2.5)
    assert (s1.millis_behind_latest, s1.events_per_second, s1.reported_age_s) == (1_200, 812.4, 1)
    assert (s2.owner, s2.checkpoint, s2.checkpoint_age_s) == (None, None, None)  # no lease yet
    assert not gone.closed and gone.checkpoint == "5"
    assert s1.to_json()["events_per_second"] == 812.4


def test_the_table_aligns_its_columns_and_ends_with_totals() -> None:
    leases = [
        Lease(
            "shardId-000000000001",
            "host:1",
            7,
            checkpoint="420",
            checkpointed_ms=NOW - 2_500,
            report=ShardReport(1_200, 812.4, NOW - 1_000),
        )
    ]
    shards = [shard("shardId-000000000000"), shard("shardId-000000000001")]
    lines = status_table(shard_statuses(shards, leases, NOW)).splitlines()
    assert lines[0].split() == [
        "shard", "owner", "checkpoint", "checkpoint", "age", "behind", "latest", "events/s",
        "reported",
    ]  # fmt: skip
    assert lines[1].split() == ["shardId-000000000000", "-", "-", "-", "-", "-", "-"]
    assert lines[2].split() == [
        "shardId-000000000001", "host:1", "420", "2.5", "s", "1,200", "ms", "812.4", "1.0",
        "s", "ago",
    ]  # fmt: skip
    for column in ("owner", "checkpoint", "events/s"):  # every cell starts under its header
        start = lines[0].index(column)
        assert lines[1][start] != " " and lines[1][start - 1] == " "
        assert lines[2][start] != " " and lines[2][start - 1] == " "
    assert lines[3] == (
        "2 shards, 1 leased, 812.4 events/s (leased shards), at most 1,200 ms behind latest"
    )


def test_ages_read_in_the_largest_units() -> None:
    assert [format_age(s) for s in (None, 4.24, 192, 7_500, 273_600)] == [
        "-", "4.2 s", "3 min 12 s", "2 h 5 min", "3 d 4 h"
    ]  # fmt: skip
