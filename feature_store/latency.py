"""Durations counted in buckets: a histogram kept as plain numbers by the code it measures.

Components keep these; a Prometheus collector turns them into a histogram at scrape time
(``consumers.metrics``), so the feature store needs no metrics library.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# seconds: a moto write_rows call takes tens of milliseconds, a DynamoDB one a few
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Latencies:
    """How many durations fell at or under each bound (and above the last), their sum."""

    bounds: tuple[float, ...] = WRITE_BUCKETS
    counts: list[int] = field(default_factory=list)  # one per bound, then one for +Inf
    total_seconds: float = 0.0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"bucket bounds must increase, got {self.bounds}")
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        """Count one duration."""
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total_seconds += seconds

    @property
    def count(self) -> int:
        """Durations observed."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, durations at or under it)`` for every bound and ``inf``, as
        Prometheus's ``le`` buckets count them."""
        running, result = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            result.append((bound, running))
        return result
