"""A record's place in a shard: its Kinesis sequence number, then its index inside a
KPL-aggregated record (sub-sequence number; 0 for a plain record).

Positions order every event of a shard, user records of one aggregated record included, and
compare as tuples. Their text form is what the features store as high-water marks and in the
recent-items list: the sequence number alone for sub-sequence 0 (so a plain record's mark is
its sequence number, as before aggregation existed), ``"<sequence>:<sub>"`` otherwise.
"""

from __future__ import annotations

from typing import NamedTuple


class Position(NamedTuple):
    """``(sequence, sub)``: Kinesis sequence number as an integer, then sub-sequence number."""

    sequence: int
    sub: int = 0

    @classmethod
    def parse(cls, text: str) -> Position:
        """The position a mark holds: ``"49..."`` or ``"49...:3"``."""
        sequence, _, sub = text.partition(":")
        return cls(int(sequence), int(sub) if sub else 0)

    @classmethod
    def mark(cls, sequence_number: str, sub: int = 0) -> str:
        """The text form of a record's position, from its sequence number string."""
        return sequence_number if sub == 0 else f"{sequence_number}:{sub}"


BEFORE_ALL = Position(-1)  # the mark of a shard nothing was applied from
