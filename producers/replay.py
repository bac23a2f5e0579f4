"""Replay: events put back on a stream in order, as fast as possible or paced by event time.

The schedule is pure (``plan_sends``): with ``speed`` X, an event is due ``(t - t_first) / X``
after the replay starts, ``t`` its event time, so ``speed=1`` reproduces the original gaps and
``speed=60`` plays an hour in a minute; with ``speed=None`` everything is due at once. Events due
within ``tick`` seconds of each other share one call of at most ``max_chunk`` events. ``replay``
runs a schedule against an injected clock and sleep and a ``put_many``-like sink. The range
arguments of the ``streamrec replay`` command are parsed here too (``parse_instant``,
``parse_duration``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from producers.events import MIN_TIMESTAMP_MS, Event

DEFAULT_CHUNK = 500  # one PutRecords call
DEFAULT_TICK_SECONDS = 0.05
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def parse_instant(text: str) -> int:
    """UTC milliseconds of an ISO-8601 date or date-time (UTC when it has no zone), or of an
    integer taken as epoch milliseconds. Raises ``ValueError`` with an example otherwise."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        value = int(text)
        if value < MIN_TIMESTAMP_MS:
            raise ValueError(
                f"{text} is before 1990 as epoch milliseconds (seconds?); "
                "give milliseconds, e.g. 1714550400000, or ISO-8601, e.g. 2024-05-01T08:00"
            )
        return value
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither ISO-8601 (2024-05-01, 2024-05-01T08:00:00Z) "
            "nor epoch milliseconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def parse_duration(text: str) -> int | None:
    """Milliseconds of ``90m``, ``12h``, ``7d``, ``1.5h``, ``500ms`` (units ms s m h d w);
    None for ``none`` (no bound)."""
    text = text.strip().lower()
    if text == "none":
        return None
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use e.g. 90m, 12h, 7d, or none")
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)])


@dataclass
class Send:
    """One call of the schedule: ``events`` are due ``at`` seconds after the replay starts."""

    at: float
    events: list[Event] = field(default_factory=list)


def plan_sends(
    events: Iterable[Event],
    speed: float | None,
    max_chunk: int = DEFAULT_CHUNK,
    tick: float = DEFAULT_TICK_SECONDS,
) -> Iterator[Send]:
    """The calls that replay ``events`` (in event-time order), lazily, in order.

    An event before the first one's time is due at 0. ``speed`` must be positive (None: as fast
    as possible); ``max_chunk`` at least 1.
    """
    if speed is not None and speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if max_chunk < 1:
        raise ValueError(f"max_chunk must be at least 1, got {max_chunk}")
    first_ms: int | None = None
    current: Send | None = None
    for event in events:
        first_ms = event.timestamp if first_ms is None else first_ms
        due = 0.0 if speed is None else max(0.0, (event.timestamp - first_ms) / 1000 / speed)
        if current is not None and (len(current.events) == max_chunk or due - current.at > tick):
            yield current
            current = None
        if current is None:
            current = Send(due)
        current.events.append(event)
    if current is not None:
        yield current


@dataclass
class ReplayStats:
    """What a replay did: events handed to the sink, calls, and seconds spent waiting."""

    events: int = 0
    calls: int = 0
    waited: float = 0.0


def replay(
    events: Iterable[Event],
    sink: Callable[[Sequence[Event]], object],
    *,
    speed: float | None = None,
    max_chunk: int = DEFAULT_CHUNK,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int], object] | None = None,
) -> ReplayStats:
    """Hand ``events`` to ``sink`` on the schedule of ``plan_sends``; returns the stats.

    Never sleeps for a call already due: a slow sink makes the replay catch up, not drift.
    ``progress`` is told how many events each call carried. What the sink does with failures
    is its own business (the caller collects them).
    """
    stats = ReplayStats()
    start = clock()
    for send in plan_sends(events, speed, max_chunk):
        wait = start + send.at - clock()
        if wait > 0:
            sleep(wait)
            stats.waited += wait
        sink(send.events)
        stats.events += len(send.events)
        stats.calls += 1
        if progress is not None:
            progress(len(send.events))
    return stats


def shift_to_now(events: Sequence[Event], now_ms: int) -> tuple[list[Event], int]:
    """``events`` moved in time so the newest is at ``now_ms``, gaps kept; and the shift (ms).

    For demos of old data sets: time-windowed features of events years old hold nothing.
    """
    if not events:
        return [], 0
    shift = now_ms - max(e.timestamp for e in events)
    return [e.model_copy(update={"timestamp": e.timestamp + shift}) for e in events], shift
