"""Pure scoring: the candidate sources, their blend, exclusions, filters and backfill."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feature_store.features import ItemFeatures, Popular, RecentItem, TrendCandidate, UserFeatures
from feature_store.transforms import Sequenced, fold_user
from models.catalog import ItemCatalog
from models.filters import Filters
from models.recommender import (
    POPULAR_REASON,
    TRENDING_REASON,
    Blend,
    Recommendation,
    backfill,
    rank,
    recency_weight,
)
from producers.events import Event

NOW = 1_700_000_000_000
HOUR = 3_600_000
COVIS_ONLY = Blend(covisit=1.0, neighbours=0.0, trending=0.0, content=0.0)


def recent(*item_ids: str) -> tuple[RecentItem, ...]:
    """Recent entries, newest first."""
    return tuple(
        RecentItem(i, "view", 1_000 - n, "shard-0", str(n)) for n, i in enumerate(item_ids)
    )


def user(recent_ids: tuple[str, ...], seen: tuple[str, ...] = ()) -> UserFeatures:
    return UserFeatures("u1", recent=recent(*recent_ids), seen=seen or recent_ids)


POPULAR = Popular((("p1", 90), ("c", 80), ("p2", 70), ("seen", 60), ("p3", 50)))


def ids(recs: list[Recommendation]) -> list[str]:
    return [r.item_id for r in recs]


def test_recency_weight_halves_at_rank_one() -> None:
    assert recency_weight(0) == 1.0
    assert recency_weight(1) == 0.5
    assert recency_weight(3) == 0.25


def test_co_visited_items_rank_by_recency_weighted_count_scaled_to_the_best() -> None:
    u = user(("new", "old"))
    items = [
        ItemFeatures("new", covis={"c": 2, "d": 1}),
        ItemFeatures("old", covis={"c": 2, "e": 5}),
    ]
    recs = rank(u, items, Popular(), 3, blend=COVIS_ONLY)
    # raw: c 2*1 + 2*0.5 = 3.0; e 5*0.5 = 2.5; d 1*1 = 1.0, scaled by the best (3.0)
    assert [(r.item_id, r.score) for r in recs] == [("c", 1.0), ("e", 0.833333), ("d", 0.333333)]


def test_reason_names_the_source_item_that_contributed_most() -> None:
    u = user(("new", "old"))
    items = [ItemFeatures("new", covis={"c": 1}), ItemFeatures("old", covis={"c": 6})]
    (rec,) = rank(u, items, Popular(), 1)
    assert rec.reason == "seen with old"


def test_ties_break_by_item_id() -> None:
    recs = rank(user(("a",)), [ItemFeatures("a", covis={"z": 1, "m": 1})], Popular(), 2)
    assert ids(recs) == ["m", "z"]


def test_equal_contributions_give_the_newer_items_reason_and_ties_at_k_by_id() -> None:
    # c: 2 * 1 from "new", 4 * 0.5 from "old": equal, the first (newest) names it
    u = user(("new", "old"))
    items = [
        ItemFeatures("new", covis={"c": 2, "y": 1, "x": 1}),
        ItemFeatures("old", covis={"c": 4}),
    ]
    recs = rank(u, items, Popular(), 2)
    assert [(r.item_id, r.reason) for r in recs] == [("c", "seen with new"), ("x", "seen with new")]
    assert ids(rank(u, items, Popular(), 3)) == ["c", "x", "y"]  # x and y tie: by id, at the cut


def test_seen_and_recent_items_are_left_out_unless_asked_for() -> None:
    u = UserFeatures("u1", recent=recent("a", "b"), seen=("old-seen", "a"))
    items = [
        ItemFeatures("a", covis={"b": 9, "old-seen": 9, "fresh": 1}),
        ItemFeatures("b", covis={"a": 9}),
    ]
    assert ids(rank(u, items, Popular(), 5)) == ["fresh"]
    everything = rank(u, items, Popular(), 5, filters=Filters(exclude_seen=False))
    assert set(ids(everything)) == {"a", "b", "old-seen", "fresh"}


def test_unknown_recent_items_contribute_nothing() -> None:
    u = user(("gone", "a"))
    recs = rank(u, [None, ItemFeatures("a", covis={"c": 2})], Popular(), 1)
    assert recs == [Recommendation("c", 1.0, "seen with a")]


def test_batch_model_neighbours_are_candidates_with_their_reason() -> None:
    u = user(("a", "b"))
    neighbours = {"a": [("n1", 0.9), ("c", 0.1)], "b": [("n2", 0.8)]}
    items = [ItemFeatures("a", covis={"c": 4}), ItemFeatures("b")]
    recs = rank(u, items, Popular(), 3, neighbours=neighbours)
    assert ids(recs) == ["c", "n1", "n2"]  # c: 1.0 covis + 0.5 * 0.1/0.9; n1: 0.5; n2: 0.5*0.4/0.9
    assert [r.reason for r in recs] == ["seen with a", "similar to a", "similar to b"]


def trend(item_id: str, last_hour: int, week: int) -> TrendCandidate:
    bucket = NOW // 300_000
    return TrendCandidate(item_id, {bucket: last_hour}, week, NOW)


def test_trending_items_score_above_their_baseline_only() -> None:
    popular = Popular((("p1", 90),), (trend("hot", 30, 168), trend("usual", 1, 168)))
    recs = rank(None, [], popular, 3, now_ms=NOW)
    assert [(r.item_id, r.reason) for r in recs] == [
        ("hot", TRENDING_REASON),
        ("p1", POPULAR_REASON),
    ]


def test_trending_is_scored_again_once_time_moves_past_its_step() -> None:
    popular = Popular((("p1", 90),), (trend("hot", 30, 168),))
    assert rank(None, [], popular, 1, now_ms=NOW)[0].reason == TRENDING_REASON
    assert rank(None, [], popular, 1, now_ms=NOW + 1)[0].reason == TRENDING_REASON  # same step
    later = NOW + 2 * HOUR  # the hot hour is over
    assert [(r.item_id, r.reason) for r in rank(None, [], popular, 1, now_ms=later)] == [
        ("p1", POPULAR_REASON)
    ]


def rating(n: int, item: str, genres: str) -> Sequenced:
    event = Event(
        event_id=f"e{n}",
        user_id="u1",
        item_id=item,
        event_type="rating",
        value=4.0,
        timestamp=NOW - HOUR + n,
        context={"genres": genres},
    )
    return Sequenced(event, "shard-0", str(n))


def test_a_user_with_few_events_gets_popular_items_of_their_genres() -> None:
    u = fold_user(UserFeatures("u1"), [rating(1, "seen-drama", "Drama")])
    catalog = ItemCatalog({"p1": frozenset({"Comedy"}), "p2": frozenset({"Drama", "War"})})
    recs = rank(u, [ItemFeatures("seen-drama")], POPULAR, 2, catalog=catalog, now_ms=NOW)
    assert [(r.item_id, r.reason) for r in recs] == [("p2", "genre Drama"), ("p1", "popular")]


CATALOG = ItemCatalog(
    {
        "c": frozenset({"Drama"}),
        "d": frozenset({"Comedy"}),
        "p1": frozenset({"Drama", "Comedy"}),
        "p2": frozenset({"Horror"}),
    }
)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(exclude_items=frozenset({"c", "p1"})), ["d", "p2", "p3"]),
        (Filters(include_genres=frozenset({"Drama"})), ["c", "p1"]),
        (Filters(exclude_genres=frozenset({"Drama"})), ["d", "p2", "p3"]),
        (Filters(include_genres=frozenset({"Comedy"}), exclude_genres=frozenset({"Drama"})), ["d"]),
    ],
)
def test_filters_apply_to_every_source_and_to_the_backfill(
    filters: Filters, expected: list[str]
) -> None:
    u = user(("a",), seen=("a", "seen"))
    items = [ItemFeatures("a", covis={"c": 2, "d": 1})]
    recs = rank(u, items, POPULAR, 3, filters=filters, catalog=CATALOG, blend=COVIS_ONLY)
    assert ids(recs) == expected


def test_backfill_fills_to_k_without_duplicates_and_skips_excluded() -> None:
    covis = [Recommendation("c", 3.0, "seen with a")]
    recs = backfill(covis, POPULAR, k=4, excluded={"seen"})
    assert ids(recs) == ["c", "p1", "p2", "p3"]
    assert [r.reason for r in recs[1:]] == [POPULAR_REASON] * 3
    assert recs[1].score == 90.0


def test_backfill_keeps_co_visited_first_and_truncates_to_k() -> None:
    covis = [Recommendation(i, 1.0, "seen with a") for i in ("x", "y", "z")]
    assert ids(backfill(covis, POPULAR, k=2)) == ["x", "y"]


def test_backfill_is_short_only_when_popularity_runs_out() -> None:
    assert len(backfill([], POPULAR, k=50)) == len(POPULAR.items)
    assert backfill([], Popular(), k=3) == []


@pytest.mark.parametrize("k", [1, 3, 5])
def test_unknown_user_gets_the_most_popular_items(k: int) -> None:
    recs = rank(None, [], POPULAR, k)
    assert ids(recs) == [i for i, _ in POPULAR.items[:k]]
    assert all(r.reason == POPULAR_REASON for r in recs)


def test_user_without_recent_items_gets_popular_minus_seen() -> None:
    u = UserFeatures("u1", seen=("p1",))
    assert ids(rank(u, [], POPULAR, k=2)) == ["c", "p2"]


ITEM = st.sampled_from([f"i{n}" for n in range(12)])


@given(
    recent_ids=st.lists(ITEM, min_size=1, max_size=5, unique=True),
    covis=st.lists(st.dictionaries(ITEM, st.integers(1, 9), max_size=6), min_size=5, max_size=5),
    seen=st.lists(ITEM, max_size=4, unique=True),
    popular=st.lists(ITEM, max_size=12, unique=True),
    excluded=st.frozensets(ITEM, max_size=3),
    k=st.integers(1, 15),
)
def test_a_list_has_no_duplicates_nothing_excluded_and_is_as_long_as_it_can_be(
    recent_ids: list[str],
    covis: list[dict[str, int]],
    seen: list[str],
    popular: list[str],
    excluded: frozenset[str],
    k: int,
) -> None:
    u = UserFeatures("u", recent=recent(*recent_ids), seen=tuple(seen))
    items = [ItemFeatures(i, covis=c) for i, c in zip(recent_ids, covis, strict=False)]
    pop = Popular(tuple((i, 100 - n) for n, i in enumerate(popular)))
    recs = rank(u, items, pop, k, filters=Filters(exclude_items=excluded))
    got = ids(recs)
    banned = set(recent_ids) | set(seen) | excluded
    assert len(got) == len(set(got)) <= k
    assert not set(got) & banned
    available = ({c for d in covis[: len(recent_ids)] for c in d} | set(popular)) - banned
    assert len(got) == min(k, len(available))


def test_cold_recent_items_get_content_neighbours_and_warm_ones_do_not() -> None:
    u = user(("cold", "warm", "known"))
    items = [ItemFeatures("cold"), ItemFeatures("warm", covis={"c": 1}), ItemFeatures("known")]
    content = {"cold": [("like-cold", 0.9)], "warm": [("like-warm", 0.9)], "known": [("k", 1.0)]}
    recs = rank(u, items, Popular(), 5, neighbours={"known": [("n", 1.0)]}, cold_neighbours=content)
    reasons = {r.item_id: r.reason for r in recs}
    assert reasons["like-cold"] == "like cold"
    assert "like-warm" not in reasons  # co-visits describe it: content is not needed
    assert "k" not in reasons  # the batch model knows it
    assert reasons["n"] == "similar to known"


def test_a_recommendation_as_a_dict_holds_every_field() -> None:
    rec = Recommendation("i1", 0.5, "seen with i0")
    assert rec.as_dict() == dataclasses.asdict(rec)
