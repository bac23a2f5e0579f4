"""The interactions matrix and the leave-last-out split's tie rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.interactions import InteractionLog, Interactions
from models.split import leave_last_out
from producers.events import Event, EventType


def _log(rows: list[tuple[str, str, int]]) -> InteractionLog:
    users, items, times = zip(*rows, strict=True)
    return InteractionLog.from_columns(list(users), list(items), list(times))


def test_equal_latest_timestamps_hold_out_the_later_row() -> None:
    log = _log([("a", "x", 2), ("a", "y", 1), ("a", "z", 2), ("b", "x", 5), ("b", "y", 7)])
    split = leave_last_out(log)
    held = dict(zip(split.test_users.tolist(), split.test_items.tolist(), strict=True))
    assert held == {"a": "z", "b": "y"}
    assert split.train.item_ids.tolist() == ["y", "x", "x"]  # time order, ties in input order
    assert split.train.order.tolist() == [1, 0, 3]


def test_a_user_with_one_interaction_is_not_evaluated_and_keeps_it_in_training() -> None:
    split = leave_last_out(_log([("a", "x", 1), ("a", "y", 2), ("solo", "x", 3)]))
    assert split.test_users.tolist() == ["a"]
    assert split.train.user_ids.tolist() == ["a", "solo"]
    with pytest.raises(ValueError, match="min_interactions"):
        leave_last_out(split.train, min_interactions=1)


def test_the_matrix_is_binary_and_indexed_by_first_appearance() -> None:
    events = [
        Event(event_id=f"e{n}", user_id=u, item_id=i, event_type=EventType.VIEW, timestamp=t)
        for n, (u, i, t) in enumerate(
            [
                ("u2", "b", 1_700_000_000_000),
                ("u1", "a", 1_700_000_001_000),
                ("u2", "b", 1_700_000_002_000),
                ("u2", "a", 1_700_000_003_000),
            ]
        )
    ]
    data = Interactions.from_events(events)
    assert data.users == ("u2", "u1") and data.items == ("b", "a")
    assert data.matrix.toarray().tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert data.log.events is not None and len(data.log.events) == 4


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="timestamps 1"):
        InteractionLog.from_columns(["a", "b"], ["x", "y"], [1])


rows = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from("wxyz"), st.integers(0, 3)), max_size=30
)


@given(rows)
def test_each_held_out_row_is_its_users_latest_by_time_then_row(data: list) -> None:
    if not data:
        return
    log = _log(data)
    split = leave_last_out(log)
    assert len(split.train) + len(split.test_users) == len(data)
    for user, item in zip(split.test_users, split.test_items, strict=True):
        mine = [(t, n, i) for n, (u, i, t) in enumerate(data) if u == user]
        assert len(mine) >= 2
        assert max(mine)[2] == item
