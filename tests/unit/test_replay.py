"""Replay, pure parts: the pacing schedule on a fake clock, range arguments, partition pruning."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from feature_store.lake import arrival_window, partition_of_key
from producers.events import MAX_CLOCK_SKEW_MS, Event
from producers.replay import parse_duration, parse_instant, plan_sends, replay

T0 = int(datetime(2024, 5, 1, 8, 0, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
DAY = 24 * HOUR


def _events(offsets_ms: Sequence[int]) -> list[Event]:
    return [
        Event(event_id=f"e{n}", user_id="u", item_id="i", event_type="view", timestamp=T0 + off)
        for n, off in enumerate(offsets_ms)
    ]


class FakeClock:
    """A clock that only moves when someone sleeps (or the sink takes time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _run(events: list[Event], speed: float | None, sink_seconds: float = 0.0, **kw: int):
    clock = FakeClock()
    calls: list[tuple[float, list[str]]] = []

    def sink(chunk: Sequence[Event]) -> None:
        calls.append((round(clock.now - 100.0, 6), [e.event_id for e in chunk]))
        clock.now += sink_seconds

    stats = replay(events, sink, speed=speed, clock=clock, sleep=clock.sleep, **kw)
    return calls, stats, clock


def test_speed_divides_the_event_time_gaps() -> None:
    calls, stats, _ = _run(_events([0, 1_000, 1_020, 10_000]), speed=2)
    # 1_000 and 1_020 ms are due 0.5 and 0.51 s in: within one tick, so one call
    assert calls == [(0.0, ["e0"]), (0.5, ["e1", "e2"]), (5.0, ["e3"])]
    assert (stats.events, stats.calls) == (4, 3)
    assert stats.waited == pytest.approx(5.0)


def test_speed_one_is_real_time_and_a_slow_sink_catches_up_without_sleeping() -> None:
    calls, _, clock = _run(_events([0, 1_000, 2_000, 3_000]), speed=1, sink_seconds=1.5)
    # the sink takes 1.5 s per call: every call after the first is already late, none waits
    assert [at for at, _ in calls] == [0.0, 1.5, 3.0, 4.5]
    assert clock.sleeps == []


def test_max_sends_everything_at_once_in_chunks_of_at_most_500() -> None:
    calls, stats, clock = _run(_events(range(0, 1_201_000, 1_000)), speed=None)
    assert [len(ids) for _, ids in calls] == [500, 500, 201]
    assert [at for at, _ in calls] == [0.0, 0.0, 0.0]
    assert clock.sleeps == [] and stats.waited == 0
    assert [i for _, ids in calls for i in ids] == [f"e{n}" for n in range(1201)]


def test_paced_calls_are_also_capped_by_max_chunk() -> None:
    sends = list(plan_sends(_events([0] * 5 + [60_000]), speed=60, max_chunk=2))
    assert [(s.at, [e.event_id for e in s.events]) for s in sends] == [
        (0.0, ["e0", "e1"]),
        (0.0, ["e2", "e3"]),
        (0.0, ["e4"]),
        (1.0, ["e5"]),
    ]


def test_plan_sends_refuses_bad_arguments_and_handles_no_events() -> None:
    assert list(plan_sends([], speed=1)) == []
    with pytest.raises(ValueError, match="speed"):
        list(plan_sends(_events([0]), speed=0))
    with pytest.raises(ValueError, match="max_chunk"):
        list(plan_sends(_events([0]), speed=None, max_chunk=0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", T0 - 8 * HOUR),
        ("2024-05-01T08:00", T0),
        ("2024-05-01T08:00:00Z", T0),
        ("2024-05-01T10:00:00+02:00", T0),
        ("2024-05-01 08:00:00.250", T0 + 250),
        (str(T0), T0),
        (f" {T0} ", T0),
    ],
)
def test_instants_are_iso_8601_in_utc_or_epoch_ms(text: str, expected: int) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [("1714550400", "seconds?"), ("yesterday", "ISO-8601"), ("2024-13-01", "ISO-8601")],
)
def test_bad_instants_say_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("?", r"\?")):
        parse_instant(text)


def test_durations() -> None:
    assert parse_duration("7d") == 7 * DAY
    assert parse_duration("12h") == 12 * HOUR
    assert parse_duration("1.5h") == 90 * 60_000
    assert parse_duration("90m") == 90 * 60_000
    assert parse_duration("45s") == 45_000
    assert parse_duration("500ms") == 500
    assert parse_duration("2w") == 14 * DAY
    assert parse_duration("None") is None
    for bad in ("7", "7 days", "-1h", "h"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_the_arrival_window_spans_skew_before_and_lateness_after() -> None:
    start, end = T0, T0 + 2 * HOUR  # 08:00 to 10:00 event time
    # arrivals from 1 day before 08:00 (clock skew) up to, not including, 10:00 + 7 days
    assert arrival_window(start, end, 7 * DAY) == (("2024-04-30", "08"), ("2024-05-08", "09"))
    assert arrival_window(start, end, 0, clock_skew_ms=0) == (
        ("2024-05-01", "08"),
        ("2024-05-01", "09"),
    )
    assert arrival_window(start, end + 1, 0, clock_skew_ms=0)[1] == ("2024-05-01", "10")
    assert arrival_window(start, end, 30 * 60_000, clock_skew_ms=1)[0] == ("2024-05-01", "07")
    assert arrival_window(start, end, None) is None
    with pytest.raises(ValueError, match="empty range"):
        arrival_window(end, start, DAY)


def test_an_event_is_inside_the_window_of_any_range_holding_it() -> None:
    # an event of time t arriving at a in [t - skew, t + lateness] is in [min, max] partitions
    lateness = 3 * HOUR
    for t in (T0, T0 + HOUR - 1, T0 + 59 * 60_000):
        first, last = arrival_window(T0, T0 + HOUR, lateness)
        for arrival in (t - MAX_CLOCK_SKEW_MS, t, t + lateness):
            key = f"events/dt={_dt(arrival)}/hour={_hour(arrival)}/x.parquet"
            assert first <= partition_of_key("events/", key) <= last


def test_partition_of_key() -> None:
    assert partition_of_key("events/", "events/dt=2024-05-01/hour=09/s-1-x.parquet") == (
        "2024-05-01",
        "09",
    )
    assert partition_of_key("events/", "events/other/x.parquet") is None
    assert partition_of_key("events/", "lake/dt=2024-05-01/hour=09/x.parquet") is None


def _dt(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%d")


def _hour(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%H")
