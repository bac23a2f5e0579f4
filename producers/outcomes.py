"""The books of a producer: what it holds, which puts are resolved, and what became of them.

Every record put is held until resolved exactly once, delivered or failed. The ledger counts
what is held (the buffer bound covers queued, in-flight and waiting records alike), keeps the
watermark of resolved put numbers (``flush`` waits on it), and collects the outcomes since the
last ``take_result``; each resolution goes into an ``Outcome`` for the driver to hand to the
event's future.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from producers.batching import Pending
from producers.metrics import MetricsRecorder
from producers.records import Delivery, FailedEvent, ProduceResult

Result = Delivery | FailedEvent


@dataclass
class Outcome:
    """The records a call resolved: ``(token, Delivery | FailedEvent)`` in the order sent."""

    resolved: list[tuple[Any, Result]] = field(default_factory=list)


class Watermark:
    """Every put number below ``next`` is resolved (outcomes arrive out of order)."""

    def __init__(self) -> None:
        self.next = 1
        self._done: set[int] = set()

    def resolve(self, seq: int) -> None:
        """Note ``seq`` resolved."""
        self._done.add(seq)
        while self.next in self._done:
            self._done.remove(self.next)
            self.next += 1


class Ledger:
    """Held records, resolved puts and outcomes; updates the metrics as it goes."""

    def __init__(self, metrics: MetricsRecorder) -> None:
        self._metrics = metrics
        self._watermark = Watermark()
        self.events = self.bytes = 0  # held now
        self._sent = 0
        self._failed: list[tuple[int, FailedEvent]] = []

    def hold(self, pending: Pending) -> None:
        """Count a record just put."""
        self.events += 1
        self.bytes += pending.record.size
        self._metrics.buffered(self.events, self.bytes)

    def resolve(self, pending: Pending, result: Result, now: float, outcome: Outcome) -> None:
        """Record a held record's final result (once) and add it to ``outcome``."""
        self.events -= 1
        self.bytes -= pending.record.size
        self._watermark.resolve(pending.seq)
        self._metrics.outcome(now - pending.added_at)
        if isinstance(result, Delivery):
            self._metrics.sent += 1
            self._sent += 1
        else:
            self._metrics.failed[result.error_code] += 1
            self._failed.append((pending.seq, result))
        outcome.resolved.append((pending.token, result))

    def resolved_through(self, seq: int) -> bool:
        """True once every record put up to ``seq`` is resolved."""
        return self._watermark.next > seq

    def take_result(self) -> ProduceResult:
        """The outcomes since the previous call: count sent, every failure in put order."""
        result = ProduceResult(self._sent, [failure for _, failure in sorted(self._failed)])
        self._sent, self._failed = 0, []
        return result
