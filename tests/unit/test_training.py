"""Point-in-time training sets (in memory): no row sees an event at or after its label time."""

from __future__ import annotations

import json

import pytest

from feature_store.training import Label, labels_from_events, training_rows
from producers.events import Event

T = 1_700_000_000_000
MINUTE = 60_000
FEATURES = [
    "user.recent_items",
    "user.event_counts_all",
    "user.event_counts_1h",
    "item.interactions_all",
    "global.top_popular",
]


def ev(n: int, item: str, minutes: int, user: str = "u", kind: str = "view") -> Event:
    return Event(
        event_id=f"e{n}",
        user_id=user,
        item_id=item,
        event_type=kind,
        timestamp=T + minutes * MINUTE,
    )


async def test_a_planted_future_event_never_reaches_an_earlier_label() -> None:
    events = [
        ev(1, "a", 0),
        ev(2, "x", 1, user="other"),
        ev(3, "planted", 6),  # after the first label: must stay invisible to it
        ev(4, "tie", 5),  # exactly at the label time: not before it either
        ev(5, "x", 30),
    ]
    labels = [Label("u", "x", T + 20 * MINUTE), Label("u", "x", T + 5 * MINUTE)]
    later, first = await training_rows(labels, events, FEATURES)
    assert [r["item_id"] for r in first["user.recent_items"]] == ["a"]
    assert first["user.event_counts_all"] == {"view": 1}
    assert first["item.interactions_all"] == 1  # the other user's, at minute 1
    assert "planted" not in json.dumps(first) and "tie" not in json.dumps(first)
    # the later label does see them: the check above could fail
    assert [r["item_id"] for r in later["user.recent_items"]] == ["planted", "tie", "a"]
    assert later["item.interactions_all"] == 1  # minute 30 is after it
    assert (later["label_time"], later["label"]) == (T + 20 * MINUTE, 1.0)


async def test_windows_end_at_the_label_time() -> None:
    events = [ev(1, "a", 0), ev(2, "b", 10)]
    (row,) = await training_rows([Label("u", "c", T + 200 * MINUTE)], events, FEATURES)
    assert row["user.event_counts_all"] == {"view": 2}
    assert row["user.event_counts_1h"] == {}  # both are more than an hour before the label


async def test_labels_straight_from_the_log_exclude_their_own_event() -> None:
    events = [
        ev(1, "a", 0, kind="rating"),
        ev(2, "b", 1, kind="view"),
        ev(3, "c", 2, kind="rating"),
    ]
    labels = labels_from_events(events, ["rating"])
    assert [(lab.item_id, lab.time_ms) for lab in labels] == [("a", T), ("c", T + 2 * MINUTE)]
    first, second = await training_rows(
        labels, events, ["user.recent_items", "item.interactions_all"]
    )
    assert first["user.recent_items"] is None  # nothing of the user before its first event
    assert first["item.interactions_all"] is None
    assert [r["item_id"] for r in second["user.recent_items"]] == ["b", "a"]


async def test_an_unknown_feature_is_named() -> None:
    with pytest.raises(KeyError, match=r"user\.nope"):
        await training_rows([Label("u", "a", T)], [], ["user.nope"])
