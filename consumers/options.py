"""The embedded runner's knobs: how a shard is polled, and the timings of leasing (seconds)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadOptions:
    """How a shard is polled, and how failures are retried."""

    idle_interval: float = 1.0  # extra wait after an empty answer
    limit: int = 10_000  # records per GetRecords call
    max_failures: int | None = 5  # a batch failing this often in a row surfaces (None: never)
    retry_delay: float = 0.5  # first back-off after a failed batch or a throttled call
    max_retry_delay: float = 30.0


@dataclass(frozen=True)
class LeaseOptions:
    """Timings of leasing, shard discovery, the watchdog and lag logs (seconds)."""

    failover_time: float = 10.0  # a lease whose counter stood still this long is expired
    lease_renewal_interval: float | None = None  # default: a third of the failover time
    shard_sync_interval: float = 10.0
    watchdog_timeout: float | None = 60.0  # None: no watchdog
    lag_log_interval: float = 30.0

    @property
    def renewal(self) -> float:
        """Seconds between rounds: renewals must land well inside the failover time."""
        renewal = self.lease_renewal_interval or self.failover_time / 3
        if renewal >= self.failover_time:
            raise ValueError("lease_renewal_interval must be shorter than failover_time")
        return renewal
