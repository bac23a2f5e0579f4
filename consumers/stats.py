"""What the embedded runner reports: per-shard progress and lag, and totals over the shards."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ShardProgress:
    """What the runner knows of one shard, for progress bars, lag reporting and the watchdog."""

    records: int = 0  # Kinesis records (an aggregated record counts once)
    events: int = 0  # valid events decoded from them
    poison: int = 0
    millis_behind_latest: int | None = None  # from the last GetRecords answer
    iterator_age_ms: int | None = None  # age of the last record read (0 when at the tip)
    checkpoint: str | None = None
    checkpointed_at: float | None = None  # wall-clock time of this runner's last checkpoint
    held: bool = False  # this runner holds the shard's lease
    caught_up: bool = False
    ended: bool = False
    pending: int = 0  # records read but not yet checkpointed: the batch in hand
    buffered: int = 0  # records processed, checkpoint held back: a processor buffers them
    last_progress: float = 0.0  # monotonic time of the last answered GetRecords call
    failures: int = 0  # batches that failed in a row (reset by a success)
    errors: int = 0  # batches that failed in all
    throttles: int = 0  # GetRecords calls refused with ProvisionedThroughputExceeded
    expired_iterators: int = 0  # iterators renewed from the checkpoint after expiring
    leases_lost: int = 0  # times another worker took the lease while this one held it
    watchdog_restarts: int = 0  # times the watchdog released and restarted a stuck shard
    stuck_in_a_row: int = 0  # watchdog restarts since the shard last completed a batch

    @property
    def waiting(self) -> bool:
        """Records are waiting: a batch is in hand or the shard is behind its tip."""
        return self.pending > 0 or (self.millis_behind_latest or 0) > 0


@dataclass
class RunnerStats:
    """Progress of every shard the runner has seen."""

    shards: dict[str, ShardProgress] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """Records read from every shard, poison included."""
        return sum(p.records for p in self.shards.values())

    @property
    def events(self) -> int:
        """Valid events decoded from every shard (aggregated records counted by their events)."""
        return sum(p.events for p in self.shards.values())

    @property
    def poison(self) -> int:
        """Records sent to the dead-letter prefix."""
        return sum(p.poison for p in self.shards.values())

    @property
    def watchdog_restarts(self) -> int:
        """Stuck shards the watchdog released and restarted."""
        return sum(p.watchdog_restarts for p in self.shards.values())

    @property
    def leases_lost(self) -> int:
        """Leases another worker took from this one."""
        return sum(p.leases_lost for p in self.shards.values())

    def held(self) -> list[str]:
        """The shards whose lease this runner holds, sorted."""
        return sorted(s for s, p in self.shards.items() if p.held)

    def lag(self) -> dict[str, tuple[int | None, int | None]]:
        """Per held shard: (MillisBehindLatest, iterator age in ms); None before the first read."""
        return {
            s: (p.millis_behind_latest, p.iterator_age_ms)
            for s, p in sorted(self.shards.items())
            if p.held
        }
