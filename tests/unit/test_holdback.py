"""Held-back checkpoints (pure): the newest batch end before every processor's oldest held one."""

from __future__ import annotations

import pytest

from consumers.holdback import Holdback
from feature_store.positions import Position

SHARD = "shardId-000000000000"


class Holding:
    """A buffering processor holding from ``oldest`` (None: nothing)."""

    def __init__(self, oldest: int | None = None) -> None:
        self.oldest = oldest

    def held_from(self, shard_id: str) -> Position | None:
        return None if self.oldest is None else Position(self.oldest)


class Plain:
    """A processor without ``held_from``: it holds nothing."""


def test_without_buffering_every_batch_is_checkpointed() -> None:
    holdback = Holdback()
    assert holdback.processed(Position(5), 5, [Plain()], SHARD) == Position(5)
    assert holdback.processed(None, 0, [Plain()], SHARD) is None  # an empty answer
    assert holdback.records == 0


def test_the_checkpoint_stays_before_the_oldest_held_batch_then_follows_the_flush() -> None:
    lander, holdback = Holding(), Holdback()
    assert holdback.processed(Position(3), 3, [Plain(), lander], SHARD) == Position(3)
    lander.oldest = 6
    assert holdback.processed(Position(6), 3, [Plain(), lander], SHARD) is None
    assert holdback.processed(Position(9), 3, [Plain(), lander], SHARD) is None
    assert holdback.records == 6
    lander.oldest = None  # flushed on an empty batch
    assert holdback.processed(None, 0, [Plain(), lander], SHARD) == Position(9)
    assert holdback.records == 0


def test_with_two_buffering_processors_the_older_hold_wins() -> None:
    a, b, holdback = Holding(), Holding(), Holdback()
    assert holdback.processed(Position(2), 2, [a, b], SHARD) == Position(2)
    b.oldest = 4
    assert holdback.processed(Position(4), 2, [a, b], SHARD) is None
    a.oldest = 6
    assert holdback.processed(Position(6), 2, [a, b], SHARD) is None
    a.oldest = None  # a flushed; b still holds from 4
    assert holdback.processed(None, 0, [a, b], SHARD) is None
    a.oldest, b.oldest = 6, None  # b flushed, a holds again from 6
    assert holdback.processed(None, 0, [a, b], SHARD) == Position(4)
    assert holdback.records == 2


def test_ends_must_grow() -> None:
    holdback = Holdback()
    holdback.processed(Position(5), 1, [Holding(5)], SHARD)
    with pytest.raises(ValueError, match="not after"):
        holdback.processed(Position(5), 1, [Holding(5)], SHARD)
