"""Item numbers and numbered lists (models.numbered), and ``rank`` over them giving the answers
of the plain loop it replaced: the same items, scores and reasons, float for float."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feature_store.features import ItemFeatures, Popular, RecentItem, UserFeatures
from models import recommender
from models.catalog import ItemCatalog
from models.filters import Filters
from models.numbered import ITEM_NUMBERS, ItemNumbers, NumberedCounts, numbered, with_numbered_covis
from models.recommender import Blend, Recommendation, backfill, rank


def test_numbers_are_given_once_in_order_and_map_back() -> None:
    numbers = ItemNumbers()
    assert numbers.numbers(["a", "b", "a"]).tolist() == [0, 1, 0]
    assert numbers.number("c") == 2
    assert [numbers.id_of(n) for n in range(3)] == ["a", "b", "c"]
    assert numbers.known(["c", "never", "a"]).tolist() == [2, 0]  # asks give no new number
    assert len(numbers) == 3


def test_a_list_is_numbered_once_its_positive_entries_in_order() -> None:
    covis = {"x": 3, "zero": 0, "y": 1}
    first, strengths = numbered(covis)
    assert [ITEM_NUMBERS.id_of(n) for n in first.tolist()] == ["x", "y"]
    assert strengths.tolist() == [3.0, 1.0]
    again, _ = numbered(covis)
    assert again is first  # kept: the same list is not numbered again
    equal_copy, _ = numbered(dict(covis))
    assert equal_copy is not first and equal_copy.tolist() == first.tolist()
    pairs, pair_strengths = numbered([("y", 0.5), ("x", 2.0)])
    assert pairs.tolist() == first.tolist()[::-1] and pair_strengths.tolist() == [0.5, 2.0]


def test_an_item_row_read_carries_its_co_visits_numbered() -> None:
    row = with_numbered_covis(ItemFeatures("a", covis={"x": 3, "zero": 0}))
    assert isinstance(row.covis, NumberedCounts) and row.covis == {"x": 3, "zero": 0}
    numbers, strengths = numbered(row.covis)
    assert numbers is row.covis.numbers and strengths.tolist() == [3.0]


def _plain_rank(
    user: UserFeatures,
    items: Sequence[ItemFeatures | None],
    popular: Popular,
    k: int,
    filters: Filters,
    catalog: ItemCatalog,
    neighbours: Mapping[str, Sequence[tuple[str, float]]],
    blend: Blend,
) -> list[Recommendation]:
    """The co-visitation and neighbour sources as a loop over dicts sums them (no trending
    candidates, no catalog genres: those sources are empty here)."""
    excluded = {*user.seen, *(r.item_id for r in user.recent)} if filters.exclude_seen else set()
    recent = user.recent[: len(items)]
    lists = [
        (blend.covisit, [f.covis if f else None for f in items], "seen with"),
        (blend.neighbours, [neighbours.get(r.item_id) for r in recent], "similar to"),
    ]
    blended: dict[str, float] = {}
    strongest: dict[str, tuple[float, str]] = {}
    for weight, entries_of, reason in lists:
        scores: dict[str, float] = {}
        best: dict[str, tuple[float, str]] = {}
        for position, (item, entries) in enumerate(zip(recent, entries_of, strict=True)):
            pairs = entries.items() if isinstance(entries, dict) else entries or ()
            for candidate, strength in pairs:
                if strength > 0:
                    term = strength * (1.0 / (1 + position))
                    scores[candidate] = scores.get(candidate, 0.0) + term
                    if candidate not in best or term > best[candidate][0]:
                        best[candidate] = (term, f"{reason} {item.item_id}")
        kept = {i: s for i, s in scores.items() if i not in excluded and filters.allows(i, catalog)}
        top = max(kept.values(), default=0.0)
        if weight <= 0 or top <= 0:
            continue
        for candidate, score in kept.items():
            contribution = weight * (score / top)
            blended[candidate] = blended.get(candidate, 0.0) + contribution
            if candidate not in strongest or contribution > strongest[candidate][0]:
                strongest[candidate] = (contribution, best[candidate][1])
    ranked = sorted(blended.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    chosen = [Recommendation(i, round(s, 6), strongest[i][1]) for i, s in ranked]
    return backfill(chosen, popular, k, excluded, filters, catalog)


ITEM = st.sampled_from([f"i{n}" for n in range(30)])
STRENGTH = st.one_of(st.integers(0, 9), st.floats(0.001, 50.0))


@settings(max_examples=300, deadline=None)
@given(
    recent_ids=st.lists(ITEM, min_size=1, max_size=8, unique=True),
    covis=st.lists(st.dictionaries(ITEM, STRENGTH, max_size=12), min_size=8, max_size=8),
    model=st.dictionaries(ITEM, st.lists(st.tuples(ITEM, STRENGTH), max_size=6), max_size=12),
    seen=st.lists(ITEM, max_size=6, unique=True),
    exclude=st.frozensets(ITEM, max_size=4),
    exclude_seen=st.booleans(),
    include_genres=st.frozensets(st.sampled_from(["A", "B", "C"]), max_size=2),
    exclude_genres=st.frozensets(st.sampled_from(["A", "B", "C"]), max_size=1),
    weights=st.tuples(st.sampled_from([0.0, 0.3, 1.0]), st.sampled_from([0.0, 0.5, 1.0])),
    k=st.integers(1, 12),
    read=st.booleans(),
)
def test_rank_gives_the_plain_loops_answers(
    recent_ids: list[str],
    covis: list[dict[str, float]],
    model: dict[str, list[tuple[str, float]]],
    seen: list[str],
    exclude: frozenset[str],
    exclude_seen: bool,
    include_genres: frozenset[str],
    exclude_genres: frozenset[str],
    weights: tuple[float, float],
    k: int,
    read: bool,
) -> None:
    user = UserFeatures(
        "u",
        recent=tuple(RecentItem(i, "view", 100 - n, "s", str(n)) for n, i in enumerate(recent_ids)),
        seen=tuple(seen),
    )
    items = [ItemFeatures(i, covis=c) for i, c in zip(recent_ids, covis, strict=False)]  # type: ignore[misc]
    if read:  # as the worker reads them: co-visits numbered with the row
        items = [with_numbered_covis(f) for f in items]
    popular = Popular(tuple((f"i{n}", 100 - n) for n in range(0, 30, 3)))
    # no genres, one, two; i25 and above unknown to the catalog
    genres = {f"i{n}": frozenset("AB"[: n % 3]) | frozenset("C" * (n % 2)) for n in range(25)}
    catalog = ItemCatalog(genres)
    filters = Filters(exclude_seen, exclude, include_genres, exclude_genres)
    blend = Blend(covisit=weights[0], neighbours=weights[1], trending=0.0, content=0.0)
    got = rank(
        user, items, popular, k, filters=filters, catalog=catalog, neighbours=model, blend=blend
    )
    assert got == _plain_rank(user, items, popular, k, filters, catalog, model, blend)


def test_a_tie_between_sources_gives_the_first_sources_reason() -> None:
    user = UserFeatures("u", recent=(RecentItem("r", "view", 1, "s", "1"),), seen=("r",))
    items = [ItemFeatures("r", covis={"c": 2})]
    even = Blend(covisit=1.0, neighbours=1.0, trending=0.0, content=0.0)
    (got,) = rank(user, items, Popular(), 1, neighbours={"r": [("c", 0.5)]}, blend=even)
    assert (got.item_id, got.score, got.reason) == ("c", 2.0, "seen with r")


def test_candidates_told_apart_by_sorting_give_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(3)
    ids = [f"s{n}" for n in range(200)]
    users, rows = [], []
    for u in range(40):
        recent = rng.sample(ids, 6)
        users.append(
            UserFeatures(
                f"u{u}",
                recent=tuple(RecentItem(i, "view", 9, "s", "1") for i in recent),
                seen=tuple(recent[:3]),
            )
        )
        rows.append(
            [
                ItemFeatures(i, covis={c: rng.randint(0, 9) for c in rng.sample(ids, 30)})
                for i in recent
            ]
        )
    popular = Popular(tuple((i, 100 - n) for n, i in enumerate(ids[:20])))
    dense = [rank(u, r, popular, 10) for u, r in zip(users, rows, strict=True)]
    monkeypatch.setattr(recommender, "DENSE_NUMBERS", 0)  # every catalog is "large" now
    assert [rank(u, r, popular, 10) for u, r in zip(users, rows, strict=True)] == dense
