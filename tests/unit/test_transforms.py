"""The pure feature transforms."""

from __future__ import annotations

from feature_store.features import COVIS_WINDOW, RECENT_ITEMS, ItemFeatures, Popular, UserFeatures
from feature_store.transforms import (
    Sequenced,
    covisit_pairs,
    fold_item,
    fold_user,
    merge_popular,
)
from producers.events import Event

T0 = 1_700_000_000_000


def seq(
    n: int, item: str, *, user: str = "u1", ts: int | None = None, kind: str = "view"
) -> Sequenced:
    event = Event(
        event_id=f"e{n}", user_id=user, item_id=item, event_type=kind, timestamp=ts or T0 + n
    )
    return Sequenced(event, "shard-0", str(n))


def test_recent_items_are_distinct_and_newest_first() -> None:
    state = fold_user(UserFeatures("u1"), [seq(1, "a"), seq(2, "b"), seq(3, "a", kind="click")])
    assert [(r.item_id, r.event_type) for r in state.recent] == [("a", "click"), ("b", "view")]
    assert state.seen == ("b", "a")
    assert (state.events, state.last_seen) == (3, T0 + 3)


def test_recent_items_are_bounded_and_ordered_by_event_time() -> None:
    events = [seq(n, f"i{n}") for n in range(RECENT_ITEMS + 5)]
    late = seq(1000, "late", ts=T0 - 1)  # arrives last, happened first
    state = fold_user(UserFeatures("u1"), [*events, late])
    assert len(state.recent) == RECENT_ITEMS
    assert state.recent[0].item_id == f"i{RECENT_ITEMS + 4}"
    assert "late" not in [r.item_id for r in state.recent]  # older than everything kept
    assert "late" in state.seen


def test_folding_in_two_batches_equals_one() -> None:
    events = [seq(n, f"i{n % 7}") for n in range(30)]
    once = fold_user(UserFeatures("u1"), events)
    twice = fold_user(fold_user(UserFeatures("u1"), events[:11]), events[11:])
    assert once == twice


def test_covisit_pairs_go_both_ways_within_the_window() -> None:
    pairs = [(a, b) for a, b, _ in covisit_pairs(UserFeatures("u1"), [seq(1, "a"), seq(2, "b")])]
    assert pairs == [("b", "a"), ("a", "b")]
    many = [seq(n, f"i{n}") for n in range(COVIS_WINDOW + 3)]
    last = [(a, b) for a, b, s in covisit_pairs(UserFeatures("u1"), many) if s is many[-1]]
    assert len(last) == 2 * COVIS_WINDOW


def test_fold_item_counts_per_type_and_keeps_top_covisits() -> None:
    state = fold_item(ItemFeatures("a"), [seq(1, "a").event, seq(2, "a", kind="click").event], [])
    state = fold_item(state, [seq(3, "a").event], ["b", "b", "c"])
    assert state.counts == {"view": 2, "click": 1}
    assert state.total == 3
    assert state.covis == {"b": 2, "c": 1}


def test_merge_popular_keeps_the_largest_total_and_ranks() -> None:
    merged = merge_popular(Popular((("a", 5), ("b", 3))), [("b", 7), ("c", 1), ("a", 4)])
    assert merged.items == (("b", 7), ("a", 5), ("c", 1))
