"""Replay on moto: a range of the lake back onto a second stream, exactly and in time order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from feature_store.transforms import Sequenced
from infra.clients import client
from infra.settings import Settings
from producers.events import Event
from streamrec.cli import main
from streamrec.wiring import offline_store
from tests.streams import read_stream

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
T0 = int(datetime(2024, 5, 1, 8, 0, tzinfo=UTC).timestamp() * 1000)
START, END = T0 + HOUR, T0 + 3 * HOUR  # the replayed range: 09:00 to 11:00 event time


def _event(event_id: str, at: int, user: str = "u1") -> Event:
    return Event(event_id=event_id, user_id=user, item_id="i1", event_type="view", timestamp=at)


# (event, arrival): arrivals spread over several hours, not in event-time order
LANDED = [
    (_event("before", T0 + 30 * MINUTE), T0 + 35 * MINUTE),
    (_event("r1", START, "u1"), START + 2 * MINUTE),
    (_event("r3b", START + 40 * MINUTE, "u2"), START + 41 * MINUTE),
    (_event("r3a", START + 40 * MINUTE, "u3"), START + 90 * MINUTE),  # same time: id order
    (_event("r2", START + 10 * MINUTE, "u2"), START + 70 * MINUTE),  # arrived after later ones
    (_event("r4", END - 1, "u1"), END + 5 * MINUTE),
    (_event("at-end", END, "u1"), END + MINUTE),  # the end is exclusive
    (_event("after", END + HOUR, "u2"), END + HOUR),
]
IN_RANGE = ["r1", "r2", "r3a", "r3b", "r4"]
LATE = (_event("late", START + 30 * MINUTE, "u4"), START + 10 * DAY)  # past the 7 d default


def _land(settings: Settings, landed: list[tuple[Event, int]]) -> None:
    async def write() -> None:
        async with offline_store(settings) as offline:
            for n, (event, arrival) in enumerate(landed):
                await offline.write_events(
                    [Sequenced(event, "shardId-000000000000", str(n + 1), arrival)]
                )

    asyncio.run(write())


def _new_stream(kinesis: Any) -> str:
    name = f"replay-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


@pytest.fixture
def landed(applied: Settings) -> Settings:
    """``applied`` with ``LANDED`` and ``LATE`` in its lake."""
    _land(applied, [*LANDED, LATE])
    return applied


def _setenv(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The STREAMREC_ variables naming the test's resources, as a user would set them."""
    for name, value in settings.model_dump().items():
        if value is not None:
            monkeypatch.setenv(f"STREAMREC_{name.upper()}", str(value))


@pytest.fixture
def env(landed: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``landed``, named by the environment."""
    _setenv(landed, monkeypatch)
    return landed


async def test_read_range_prunes_by_lateness_and_sorts_by_time_then_id(landed: Settings) -> None:
    async with offline_store(landed) as offline:
        bounded = await offline.read_range(START, END, 7 * DAY)
        unbounded = await offline.read_range(START, END, None)
        tight = await offline.read_range(START, END, 0, clock_skew_ms=0)
    assert [e.event_id for e in bounded.events] == IN_RANGE
    assert bounded.window == (("2024-04-30", "09"), ("2024-05-08", "10"))
    # LATE's partition (2024-05-11) was never listed; the window holds the rest of the lake
    assert (bounded.partitions, bounded.objects) == (5, len(LANDED))
    assert [e.event_id for e in unbounded.events] == ["r1", "r2", "late", "r3a", "r3b", "r4"]
    assert (unbounded.partitions, unbounded.objects, unbounded.window) == (6, 9, None)
    # no lateness: only arrivals 09:00-10:59 are read, so r4 (arrived 11:05) is missed
    assert [e.event_id for e in tight.events] == ["r1", "r2", "r3a", "r3b"]
    assert tight.partitions == 2


async def test_an_event_landed_twice_is_read_once(applied: Settings) -> None:
    twice = [(_event("r1", START), START), (_event("r1", START), START + 2 * HOUR)]
    await asyncio.to_thread(_land, applied, twice)
    async with offline_store(applied) as offline:
        found = await offline.read_range(START, END, DAY)
    assert [e.event_id for e in found.events] == ["r1"]
    assert found.objects == 2


def test_the_cli_replays_exactly_the_range_in_time_order(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    kinesis = client("kinesis", env)
    target = _new_stream(kinesis)
    argv = ["replay", "--from", "2024-05-01T09:00", "--to", "2024-05-01T11:00:00Z"]
    assert main([*argv, "--into-stream", target]) == 0
    replayed = read_stream(kinesis, target)
    replayed_in_range = [e for e, _ in LANDED if e.event_id in IN_RANGE]
    assert sorted(e.event_id for e in replayed) == sorted(IN_RANGE)
    # Kinesis orders a partition key's records, not the stream: each user's events in time order
    assert _by_user(replayed) == _by_user(replayed_in_range, IN_RANGE)
    assert f"replayed 5 of 5 events into {target}" in capsys.readouterr().err
    assert read_stream(kinesis, env.stream_name) == [], "the settings' stream is untouched"

    everything = _new_stream(kinesis)
    assert main([*argv, "--into-stream", everything, "--max-lateness", "none"]) == 0
    replayed = read_stream(kinesis, everything)
    with_late = ["r1", "r2", "late", "r3a", "r3b", "r4"]
    assert sorted(e.event_id for e in replayed) == sorted(with_late)
    landed_events = [e for e, _ in [*LANDED, LATE] if e.event_id in with_late]
    assert _by_user(replayed) == _by_user(landed_events, with_late)
    assert replayed[0] == LANDED[1][0]

    paced = _new_stream(kinesis)
    epoch_ms = ["replay", "--from", str(START), "--to", str(END), "--into-stream", paced]
    assert main([*epoch_ms, "--speed", "72000"]) == 0  # 2 h of event time in 0.1 s
    assert _by_user(read_stream(kinesis, paced)) == _by_user(replayed_in_range, IN_RANGE)


def test_a_missing_stream_is_named(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _setenv(settings, monkeypatch)
    argv = ["replay", "--from", "2024-05-01T09:00", "--to", "2024-05-01T11:00"]
    assert main([*argv, "--into-stream", "no-such-stream"]) == 2
    assert "stream 'no-such-stream' does not exist" in capsys.readouterr().err


def test_an_empty_range_says_what_was_scanned(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    kinesis = client("kinesis", env)
    target = _new_stream(kinesis)
    # only LATE has event time in 09:30-09:31, and it arrived 10 days later
    argv = ["replay", "--from", "2024-05-01T09:30", "--to", "2024-05-01T09:31"]
    assert main([*argv, "--into-stream", target]) == 1
    err = capsys.readouterr().err
    assert "no events with event time in [2024-05-01T09:30:00Z, 2024-05-01T09:31:00Z)" in err
    assert "scanned 5 partitions (8 objects)" in err
    assert "--max-lateness none" in err
    assert main([*argv, "--into-stream", target, "--max-lateness", "10d"]) == 0
    assert [e.event_id for e in read_stream(kinesis, target)] == ["late"]


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--from", "1714550400", "--to", "2024-05-02"],
        ["--from", "2024-05-01", "--to", "2024-05-02", "--max-lateness", "week"],
        ["--from", "2024-05-01", "--to", "2024-05-02", "--speed", "0"],
        ["--from", "2024-05-01", "--to", "2024-05-02", "--speed", "2", "--max"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["replay", *argv, "--into-stream", "s"])
        assert exit_.value.code == 2
    assert main(["replay", "--from", "2024-05-02", "--to", "2024-05-01", "--into-stream", "s"]) == 2
    assert "--to must be after --from" in capsys.readouterr().err


class RefusingKinesis:
    """The real client, except that PutRecords refuses every entry with a non-retryable code."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        entry = {"ErrorCode": "KMSAccessDeniedException", "ErrorMessage": "no key for you"}
        return {
            "FailedRecordCount": len(kwargs["Records"]),
            "Records": [entry] * len(kwargs["Records"]),
        }


def test_events_not_written_are_reported_and_the_exit_is_non_zero(
    env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _new_stream(client("kinesis", env))
    monkeypatch.setattr(
        "streamrec.replay.client",
        lambda service, settings: RefusingKinesis(client(service, settings)),
    )
    argv = ["replay", "--from", "2024-05-01T09:00", "--to", "2024-05-01T11:00"]
    assert main([*argv, "--into-stream", target]) == 1
    err = capsys.readouterr().err
    assert f"replayed 0 of 5 events into {target}" in err
    assert "not written: r1: KMSAccessDeniedException: no key for you" in err


def _by_user(events: list[Event], order: list[str] | None = None) -> dict[str, list[str]]:
    """Event ids per user, in stream order (or in ``order``)."""
    if order is not None:
        events = sorted(events, key=lambda e: order.index(e.event_id))
    by_user: dict[str, list[str]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event.event_id)
    return by_user
