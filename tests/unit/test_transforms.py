"""The pure feature transforms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from feature_store.features import (
    COVIS_KEEP,
    COVIS_TOP_K,
    COVIS_WINDOW,
    RECENT_ITEMS,
    ItemFeatures,
    Popular,
    UserFeatures,
)
from feature_store.transforms import (
    Sequenced,
    covisit_windows,
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


def test_covisit_windows_are_the_previous_items_recency_weighted() -> None:
    events = [seq(1, "a"), seq(2, "b"), seq(3, "c"), seq(4, "a")]
    windows = [(s.event.item_id, w) for s, w in covisit_windows(UserFeatures("u1"), events)]
    top = COVIS_WINDOW
    assert windows == [
        ("a", []),
        ("b", [("a", top)]),
        ("c", [("b", top), ("a", top - 1)]),  # b is c's newest predecessor
        ("a", [("c", top), ("b", top - 1)]),  # an item never co-visits itself
    ]
    many = [seq(n, f"i{n}") for n in range(COVIS_WINDOW + 3)]
    (_, last), *_ = reversed(covisit_windows(UserFeatures("u1"), many))
    assert len(last) == COVIS_WINDOW and min(w for _, w in last) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcdefghijklmn"), st.integers(0, 40)), max_size=60),
    st.integers(0, 59),
)
def test_covisit_windows_follow_the_recent_list_with_late_events(
    stream: list[tuple[str, int]], cut: int
) -> None:
    """The windows are computed from a short head of the recent list; they must be what the
    whole list (fold_user) holds before each event, late events and repeats included, and the
    same when the history was folded in a previous batch."""
    events = [seq(n + 1, item, ts=T0 + t) for n, (item, t) in enumerate(stream)]
    cut = min(cut, len(events))
    history = fold_user(UserFeatures("u1"), events[:cut])
    for at, (source, window) in enumerate(covisit_windows(history, events[cut:])):
        before = fold_user(history, events[cut : cut + at]) if at else history
        others = [r.item_id for r in before.recent if r.item_id != source.event.item_id]
        weights = range(COVIS_WINDOW, 0, -1)
        assert window == list(zip(others[:COVIS_WINDOW], weights, strict=False))


def test_fold_item_counts_per_type_and_sums_covisit_weights() -> None:
    state = fold_item(ItemFeatures("a"), [seq(1, "a").event, seq(2, "a", kind="click").event], [])
    state = fold_item(state, [seq(3, "a").event], [("b", 3), ("b", 2), ("c", 1)])
    assert state.counts == {"view": 2, "click": 1}
    assert state.total == 3
    assert state.covis == {"b": 5, "c": 1}
    assert state.last_seen == T0 + 3


def test_covisits_are_pruned_to_the_top_k_past_the_bound() -> None:
    state = ItemFeatures("a", covis={f"o{n}": n + 1 for n in range(COVIS_KEEP)})
    assert len(fold_item(state, [], []).covis) == COVIS_KEEP  # at the bound: kept
    pruned = fold_item(state, [], [("new", 1)])
    assert len(pruned.covis) == COVIS_TOP_K
    assert min(pruned.covis.values()) == COVIS_KEEP - COVIS_TOP_K + 1  # the heaviest survive


def test_merge_popular_keeps_the_largest_total_and_ranks() -> None:
    items = [ItemFeatures("b", total=7), ItemFeatures("c", total=1), ItemFeatures("a", total=4)]
    merged = merge_popular(Popular((("a", 5), ("b", 3))), items)
    assert merged.items == (("b", 7), ("a", 5), ("c", 1))


def test_trending_ranks_a_burst_above_a_steady_item() -> None:
    hour = 3_600_000
    now = T0 + 7 * 24 * hour
    steady = [seq(n, "steady", ts=now - n * hour).event for n in range(0, 7 * 24, 2)]  # 84 events
    burst = [seq(1000 + n, "burst", ts=now - n * 1000).event for n in range(10)]
    items = [
        fold_item(ItemFeatures(i), evs, []) for i, evs in (("steady", steady), ("burst", burst))
    ]
    merged = merge_popular(Popular(), items)
    assert [c.item_id for c in merged.trending] == ["burst", "steady"]
    assert [i for i, _ in merged.items] == ["steady", "burst"]  # popular: by total


def test_user_counts_per_event_type_in_tiles_and_all_time() -> None:
    hour = 3_600_000
    events = [
        seq(1, "a", ts=T0),
        seq(2, "b", ts=T0 + 2 * hour, kind="click"),
        seq(3, "c", ts=T0 + 30 * 24 * hour),  # a month later: T0's buckets fall out of the tiles
    ]
    state = fold_user(UserFeatures("u1"), events)
    assert state.counts == {"view": 2, "click": 1}
    assert state.tiles["view"]["d1"] == {(T0 + 30 * 24 * hour) // (24 * hour): 1}
    assert "click" not in state.tiles  # nothing of it within a week of the newest event


def test_genres_come_from_the_event_context() -> None:
    event = Event(
        event_id="g",
        user_id="u1",
        item_id="m",
        event_type="rating",
        timestamp=T0,
        context={"genres": "Action|Comedy|Action"},
    )
    state = fold_user(UserFeatures("u1"), [Sequenced(event, "shard-0", "1")])
    assert set(state.genres) == {"Action", "Comedy"}
    assert state.genres["Action"] == {T0 // (24 * 3_600_000): 1}


def test_sessions_split_on_a_gap_and_follow_session_ids() -> None:
    minute = 60_000
    gap = [seq(1, "a", ts=T0), seq(2, "b", ts=T0 + minute), seq(3, "c", ts=T0 + 40 * minute)]
    session = fold_user(UserFeatures("u1"), gap).session
    assert session is not None
    assert (session.session_id, session.length, session.items) == (
        f"s-{T0 + 40 * minute}",
        1,
        ("c",),
    )
    same = fold_user(UserFeatures("u1"), gap[:2]).session
    assert same is not None and (same.length, same.items, same.start) == (2, ("b", "a"), T0)
    named = [
        Sequenced(
            Event(
                event_id=f"n{n}",
                user_id="u1",
                item_id=f"i{n}",
                event_type="view",
                timestamp=T0 + n * 60 * minute,  # far apart, but one named session
                session_id="web-1",
            ),
            "shard-0",
            str(n),
        )
        for n in range(3)
    ]
    session = fold_user(UserFeatures("u1"), named).session
    assert session is not None and (session.session_id, session.length) == ("web-1", 3)
