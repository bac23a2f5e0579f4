"""The books of a producer: what it holds, which puts are resolved, and what became of them.

Every record put is held until resolved exactly once, delivered or failed. The ledger counts
what is held (the buffer bound covers queued, in-flight and waiting records alike), keeps the
watermark of resolved put numbers (``flush`` waits on it), and collects the outcomes since the
last ``take_result``; each resolution of a record put with a token goes into an ``Outcome``
for the driver to hand to the event's future.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from producers.batching import Pending
from producers.metrics import MetricsRecorder
from producers.records import HELD_OVERHEAD_BYTES, DeliveryFields, FailedEvent, ProduceResult

Result = DeliveryFields | FailedEvent  # a delivery as ``Delivery``'s fields (records.py)


@dataclass
class Outcome:
    """The records a call resolved: ``(token, DeliveryFields | FailedEvent)`` in the order sent,
    for the records put with a token (a future) only."""

    resolved: list[tuple[Any, Result]] = field(default_factory=list)


class Watermark:
    """Every put number below ``next`` is resolved (outcomes arrive out of order)."""

    def __init__(self) -> None:
        self.next = 1
        self._done: set[int] = set()

    def resolve(self, seq: int) -> None:
        """Note ``seq`` resolved."""
        if seq != self.next:
            self._done.add(seq)
            return
        self.next += 1
        done = self._done
        while done and self.next in done:
            done.remove(self.next)
            self.next += 1

    def resolve_many(self, seqs: Iterable[int]) -> None:
        """``resolve`` each of ``seqs`` (the in-order case written out)."""
        done = self._done
        for seq in seqs:
            if seq != self.next:
                done.add(seq)
                continue
            self.next += 1
            while done and self.next in done:
                done.remove(self.next)
                self.next += 1


class Ledger:
    """Held records, resolved puts and outcomes; updates the metrics as it goes.

    ``delivered`` and ``failed`` run once per event: they do their bookkeeping inline (the
    put-latency metrics included) rather than through further calls.
    """

    def __init__(self, metrics: MetricsRecorder) -> None:
        self._metrics = metrics
        self._watermark = Watermark()
        self.events = self.bytes = 0  # held now
        self._sent = 0
        self._failed: list[tuple[int, FailedEvent]] = []

    def hold(self, pending: Pending) -> None:
        """Count a record just put."""
        self.events += 1
        self.bytes += pending.size + HELD_OVERHEAD_BYTES
        metrics = self._metrics  # MetricsRecorder.buffered, written out: once per put
        if self.events > metrics.max_buffered_events:
            metrics.max_buffered_events = self.events
        if self.bytes > metrics.max_buffered_bytes:
            metrics.max_buffered_bytes = self.bytes

    def hold_many(self, pendings: list[Pending]) -> None:
        """``hold`` each of ``pendings`` (just put, in one chunk)."""
        if not pendings:
            return
        self.events += len(pendings)
        self.bytes += sum(p.size for p in pendings) + len(pendings) * HELD_OVERHEAD_BYTES
        metrics = self._metrics  # the counts only grew: their maxima are now
        metrics.max_buffered_events = max(metrics.max_buffered_events, self.events)
        metrics.max_buffered_bytes = max(metrics.max_buffered_bytes, self.bytes)

    def delivered(
        self, pending: Pending, delivery: DeliveryFields | None, now: float, outcome: Outcome
    ) -> None:
        """A held record was written (once). ``delivery`` goes to its token; ``None`` when it
        has no token (nobody asked, so no fields were gathered)."""
        self._release(pending, now)
        self._sent += 1
        self._metrics.sent += 1
        if pending.token is not None:
            outcome.resolved.append((pending.token, delivery))

    def delivered_many(self, pendings: list[Pending], now: float) -> None:
        """``delivered`` for records of one call that have no outcome to hand over (the core
        already put each token's delivery in the call's ``Outcome``)."""
        if not pendings:
            return
        count = len(pendings)
        self.events -= count
        self.bytes -= sum(p.size for p in pendings) + count * HELD_OVERHEAD_BYTES
        self._watermark.resolve_many(p.seq for p in pendings)
        self._sent += count
        metrics = self._metrics
        metrics.sent += count
        metrics.outcomes += count
        metrics.put_latency_sum += count * now - sum(p.added_at for p in pendings)
        oldest = now - min(p.added_at for p in pendings)
        if oldest > metrics.put_latency_max:
            metrics.put_latency_max = oldest

    def failed(self, pending: Pending, failure: FailedEvent, now: float, outcome: Outcome) -> None:
        """A held record will not be written (once): kept for ``take_result``."""
        self._release(pending, now)
        self._metrics.failed[failure.error_code] += 1
        self._failed.append((pending.seq, failure))
        if pending.token is not None:
            outcome.resolved.append((pending.token, failure))

    def _release(self, pending: Pending, now: float) -> None:
        self.events -= 1
        self.bytes -= pending.size + HELD_OVERHEAD_BYTES
        self._watermark.resolve(pending.seq)
        metrics, latency = self._metrics, now - pending.added_at
        metrics.outcomes += 1
        metrics.put_latency_sum += latency
        if latency > metrics.put_latency_max:
            metrics.put_latency_max = latency

    def resolved_through(self, seq: int) -> bool:
        """True once every record put up to ``seq`` is resolved."""
        return self._watermark.next > seq

    def take_result(self) -> ProduceResult:
        """The outcomes since the previous call: count sent, every failure in put order."""
        result = ProduceResult(self._sent, [failure for _, failure in sorted(self._failed)])
        self._sent, self._failed = 0, []
        return result
