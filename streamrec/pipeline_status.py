"""The worker's ``GET /pipeline``: the consumers' shards as their lease rows say.

Built here, in the composition root, because the worker (``models``) may not read the
consumers' lease table itself (``models`` and ``consumers`` are independent layers).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from consumers.features import FRESHNESS_BOUNDS_S
from consumers.leases import LeaseTable
from infra.settings import Settings
from models.worker import FreshnessHistogram, PipelineResponse, PipelineStatus, ShardStatus

FRESHNESS_WINDOW_MS = 5 * 60 * 1000


def pipeline_status_of(settings: Settings, dynamodb: Any) -> PipelineStatus:
    """Reads the lease rows of ``settings.app_name`` in the checkpoints table on each call; the
    freshness histogram sums the reports seen over the last five minutes."""
    leases = LeaseTable(dynamodb, settings.checkpoints_table, settings.app_name, "dashboard")
    seen: dict[str, int] = {}  # shard -> the report time last added
    recent: deque[tuple[int, tuple[int, ...]]] = deque()  # (read at, counts) of the window

    async def status() -> PipelineResponse:
        now_ms = int(time.time() * 1000)
        shards = []
        for lease in sorted(await leases.scan(), key=lambda lease: lease.shard_id):
            report, checkpointed = lease.report, lease.checkpointed_ms
            age_s = None if checkpointed is None else (now_ms - checkpointed) / 1e3
            shards.append(
                ShardStatus(
                    shard_id=lease.shard_id,
                    owner=lease.owner,
                    lag_ms=None if report is None else report.millis_behind_latest,
                    events_per_s=None if report is None else report.events_per_second,
                    checkpoint_age_s=age_s,
                )
            )
            # each report counts the events since the one before: add each new one once
            if report is not None and seen.get(lease.shard_id) != report.reported_ms:
                seen[lease.shard_id] = report.reported_ms
                recent.append((now_ms, report.freshness))
        while recent and recent[0][0] < now_ms - FRESHNESS_WINDOW_MS:
            recent.popleft()
        counts = [0] * len(FRESHNESS_BOUNDS_S)
        for _, freshness in recent:
            for i, count in enumerate(freshness[: len(counts)]):
                counts[i] += count
        return PipelineResponse(
            shards=shards,
            events_per_s=sum(s.events_per_s or 0.0 for s in shards),
            freshness=FreshnessHistogram(bounds_s=list(FRESHNESS_BOUNDS_S), counts=counts),
        )

    return status
