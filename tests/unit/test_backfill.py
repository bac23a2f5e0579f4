"""Replay into the features, pure parts: the replay order, the synthetic positions, the
fingerprint, the batching loop, and the demo's time shift."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers.backfill import REPLAY_SHARD, backfill, fingerprint, replay_order, sequenced
from consumers.processor import Batch
from producers.events import Event
from producers.replay import shift_to_now

T0 = int(datetime(2024, 5, 1, 8, 0, tzinfo=UTC).timestamp() * 1000)


def _event(event_id: str, at: int) -> Event:
    return Event(event_id=event_id, user_id="u", item_id="i", event_type="view", timestamp=T0 + at)


def test_the_order_is_by_timestamp_and_stable_for_ties() -> None:
    events = [_event("c", 5), _event("b", 1), _event("z", 3), _event("a", 3), _event("y", 1)]
    assert [e.event_id for e in replay_order(events)] == ["b", "y", "z", "a", "c"]


def test_positions_are_indexes_of_the_replay_order_on_one_shard() -> None:
    events = [_event(f"e{n}", n) for n in range(12)]
    records = sequenced(events, 9, 20)  # past the end: cut
    assert [(r.shard_id, r.sequence_number) for r in records] == [
        (REPLAY_SHARD, "9"),
        (REPLAY_SHARD, "10"),
        (REPLAY_SHARD, "11"),
    ]
    assert [r.event for r in records] == events[9:]
    assert records[0].arrival_ms == events[9].timestamp
    # numeric, not textual: "10" comes after "9"
    assert records[0].position < records[1].position


def test_the_fingerprint_sees_order_and_content() -> None:
    events = [_event("a", 1), _event("b", 2)]
    assert fingerprint(events) == fingerprint(list(events))
    assert fingerprint(events) != fingerprint(events[::-1])
    assert fingerprint(events) != fingerprint([events[0], _event("b", 3)])


class Recorder:
    """A processor that records batches and fails on the batch numbered ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.batches: list[Batch] = []
        self.fail_at = fail_at

    async def process_records(self, batch: Batch) -> None:
        if len(self.batches) == self.fail_at:
            raise RuntimeError("injected")
        self.batches.append(batch)


async def test_batches_resume_from_the_given_index_and_report_after_each() -> None:
    events = [_event(f"e{n}", n) for n in range(7)]
    recorder, reported = Recorder(), []

    async def done(applied: int) -> None:
        reported.append(applied)

    assert await backfill(events, recorder, start=2, batch_size=2, done=done) == 7
    assert reported == [4, 6, 7]
    assert [[r.sequence_number for r in b.events] for b in recorder.batches] == [
        ["2", "3"],
        ["4", "5"],
        ["6"],
    ]


async def test_a_failed_batch_is_not_reported() -> None:
    events = [_event(f"e{n}", n) for n in range(7)]
    recorder, reported = Recorder(fail_at=1), []

    async def done(applied: int) -> None:
        reported.append(applied)

    with pytest.raises(RuntimeError, match="injected"):
        await backfill(events, recorder, start=0, batch_size=3, done=done)
    assert reported == [3]


def test_shift_to_now_moves_the_newest_event_to_now_and_keeps_gaps() -> None:
    events = [_event("a", 0), _event("b", 5_000), _event("c", 2_000)]
    now = T0 + 10 * 86_400_000
    shifted, shift = shift_to_now(events, now)
    assert shift == now - (T0 + 5_000)
    assert [e.timestamp for e in shifted] == [now - 5_000, now, now - 3_000]
    assert [e.event_id for e in shifted] == ["a", "b", "c"]
    assert shift_to_now([], now) == ([], 0)


def test_replay_arguments_name_one_target_and_only_its_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from streamrec.cli import main

    span = ["replay", "--from", "2024-05-01", "--to", "2024-05-02"]
    for argv in (
        [*span],  # no target
        [*span, "--into-stream", "s", "--into-features"],
        [*span, "--into-features", "--batch-size", "0"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    capsys.readouterr()
    assert main([*span, "--into-features", "--speed", "2"]) == 2
    assert "--into-features applies as fast as it can" in capsys.readouterr().err
    assert main([*span, "--into-stream", "s", "--restart"]) == 2
    assert "--batch-size and --restart are for --into-features" in capsys.readouterr().err
