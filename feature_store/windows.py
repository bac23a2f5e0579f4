"""Event-time windows as integer tiles: counts per time bucket, pure and order-independent.

A windowed count keeps, per resolution, the number of events in each bucket of that size
(``floor(timestamp / size)``), for the newest ``keep`` buckets. A window of length ``W`` read at
time ``now`` is the sum of the ``W / size`` buckets ending with now's bucket::

    count(W, now) = #{events : now//size - W//size < timestamp//size <= now//size}

Decayed values are computed from the same tiles at read time (each bucket weighted by its age),
so the stored state is a set of integer counts: adding events in any order, in any batching,
on any number of shards gives the same state exactly, and DuckDB computes the same counts from
the lake with the same integer arithmetic. Buckets older than ``keep`` relative to the newest
event seen are dropped: no read at or after the newest event can need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

Tiles = dict[str, dict[int, int]]  # resolution name -> {bucket index: events}


@dataclass(frozen=True)
class Resolution:
    """Buckets of ``size_ms``, the newest ``keep`` of them kept."""

    name: str
    size_ms: int
    keep: int


@dataclass(frozen=True)
class Window:
    """The last ``length_ms`` of event time, counted in buckets of ``resolution``."""

    name: str
    length_ms: int
    resolution: Resolution

    def __post_init__(self) -> None:
        if self.length_ms % self.resolution.size_ms:
            raise ValueError(f"window {self.name}: not a whole number of {self.resolution.name}")
        if self.length_ms // self.resolution.size_ms > self.resolution.keep:
            raise ValueError(f"window {self.name}: longer than {self.resolution.name} keeps")

    @property
    def buckets(self) -> int:
        """How many buckets the window spans."""
        return self.length_ms // self.resolution.size_ms


def add(
    tiles: Mapping[str, Mapping[int, int]],
    resolutions: Iterable[Resolution],
    timestamps: Iterable[int],
    newest_ms: int,
) -> Tiles:
    """``tiles`` with one event per timestamp added, pruned to each resolution's ``keep``
    buckets ending with the bucket of ``newest_ms`` (the newest event time seen, these included)."""
    stamps = list(timestamps)
    result: Tiles = {}
    for r in resolutions:
        floor = newest_ms // r.size_ms - r.keep
        old = tiles.get(r.name, {})
        if not old or max(old) <= floor:
            buckets = {}  # every bucket is out of range (min and max run at C speed)
        elif min(old) > floor:
            buckets = dict(old)  # nothing to prune: a copy is cheaper than a filter
        else:
            buckets = {i: n for i, n in old.items() if i > floor}
        size = r.size_ms
        get = buckets.get
        for ts in stamps:
            index = ts // size
            if index > floor:
                buckets[index] = get(index, 0) + 1
        result[r.name] = buckets
    return result


def count(tiles: Mapping[str, Mapping[int, int]], window: Window, now_ms: int) -> int:
    """Events of the window ending at ``now_ms`` (see the module docstring)."""
    last = now_ms // window.resolution.size_ms
    first = last - window.buckets
    buckets = tiles.get(window.resolution.name, {})
    return sum(n for i, n in buckets.items() if first < i <= last)


def decayed(
    buckets: Mapping[int, int], resolution: Resolution, half_life_ms: int, now_ms: int
) -> float:
    """Events weighted by ``2 ** (-age / half_life)``, age from the end of their bucket to now;
    buckets after now count nothing (a read at a past time sees the past)."""
    last = now_ms // resolution.size_ms
    total = 0.0
    for index, n in buckets.items():
        if index <= last:
            age = max(0, now_ms - (index + 1) * resolution.size_ms)
            total += n * 0.5 ** (age / half_life_ms)
    return total
