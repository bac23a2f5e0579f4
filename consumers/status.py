"""What ``streamrec status`` shows: per shard, its lease's owner and checkpoint, and the lag and
throughput its holder last reported, read from the checkpoints table and ListShards.

No GetRecords: only a call on the shard itself tells how far behind its tip a position is, and
those count against the readers' five calls per second. The embedded runner writes its figures
on the lease with every renewal (``consumers.leases``), so they are at most a renewal interval
old while it runs; ``reported_age_s`` says how old, and once the runner stopped they are its last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from consumers.checkpoints import SHARD_END
from consumers.leases import Lease, LeaseTable
from consumers.pacing import list_shards

COLUMNS = (
    "shard",
    "owner",
    "checkpoint",
    "checkpoint age",
    "behind latest",
    "events/s",
    "reported",
)


@dataclass(frozen=True)
class ShardStatus:
    """One shard as the stream and its lease say. Ages in seconds; None: not known."""

    shard_id: str
    closed: bool  # resharded away: no new records (it may still have some to read)
    owner: str | None
    checkpoint: str | None
    checkpoint_age_s: float | None
    millis_behind_latest: int | None
    events_per_second: float | None
    reported_age_s: float | None

    def to_json(self) -> dict[str, Any]:
        """The fields as a JSON object."""
        return asdict(self)


def shard_statuses(
    shards: Sequence[dict[str, Any]], leases: Sequence[Lease], now_ms: int
) -> list[ShardStatus]:
    """Every shard of ListShards and every lease (a lease's shard may have left retention),
    sorted by shard id."""
    by_shard = {lease.shard_id: lease for lease in leases}
    closed = {
        s["ShardId"] for s in shards if "EndingSequenceNumber" in s.get("SequenceNumberRange", {})
    }
    rows = []
    for shard_id in sorted({s["ShardId"] for s in shards} | by_shard.keys()):
        lease = by_shard.get(shard_id)
        report = lease.report if lease else None
        checkpointed = lease.checkpointed_ms if lease else None
        rows.append(
            ShardStatus(
                shard_id=shard_id,
                closed=shard_id in closed or (lease is not None and lease.checkpoint == SHARD_END),
                owner=lease.owner if lease else None,
                checkpoint=lease.checkpoint if lease else None,
                checkpoint_age_s=_age(checkpointed, now_ms),
                millis_behind_latest=report.millis_behind_latest if report else None,
                events_per_second=report.events_per_second if report else None,
                reported_age_s=_age(report.reported_ms if report else None, now_ms),
            )
        )
    return rows


async def read_status(
    kinesis: Any, leases: LeaseTable, stream_name: str, now_ms: int
) -> list[ShardStatus]:
    """The status of every shard of ``stream_name`` and every lease of ``leases``' application
    (one ListShards pass and one consistent scan)."""
    shards = await list_shards(kinesis, stream_name)
    return shard_statuses(shards, await leases.scan(), now_ms)


def status_table(rows: Sequence[ShardStatus]) -> str:
    """An aligned text table, one line per shard, and a total line."""
    cells = [
        [
            row.shard_id + (" (closed)" if row.closed else ""),
            row.owner or "-",
            row.checkpoint or "-",
            format_age(row.checkpoint_age_s),
            "-" if row.millis_behind_latest is None else f"{row.millis_behind_latest:,} ms",
            "-" if row.events_per_second is None else f"{row.events_per_second:,.1f}",
            "-" if row.reported_age_s is None else f"{format_age(row.reported_age_s)} ago",
        ]
        for row in rows
    ]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    lines.append(_total(rows))
    return "\n".join(lines)


def format_age(seconds: float | None) -> str:
    """``4.2 s``, ``3 min 12 s``, ``2 h 5 min``, ``3 d 4 h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def _total(rows: Sequence[ShardStatus]) -> str:
    leased = sum(1 for r in rows if r.owner)
    rate = sum(r.events_per_second or 0.0 for r in rows if r.owner)
    behind = [r.millis_behind_latest for r in rows if r.millis_behind_latest is not None]
    worst = f"{max(behind):,} ms" if behind else "-"
    return (
        f"{len(rows)} shards, {leased} leased, {rate:,.1f} events/s (leased shards), "
        f"at most {worst} behind latest"
    )


def _age(at_ms: int | None, now_ms: int) -> float | None:
    return None if at_ms is None else max(0.0, (now_ms - at_ms) / 1000)
