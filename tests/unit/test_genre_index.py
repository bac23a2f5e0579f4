"""Genre filters as array lookups: the same decisions as ``Filters.allows``."""

from __future__ import annotations

import numpy as np
import pytest

from models import genre_index as module
from models.catalog import ItemCatalog
from models.filters import Filters
from models.genre_index import GenreIndex, genre_index
from models.numbered import ITEM_NUMBERS

CATALOG = ItemCatalog(
    {
        "gi-drama": frozenset({"Drama"}),
        "gi-both": frozenset({"Drama", "Comedy"}),
        "gi-comedy": frozenset({"Comedy"}),
        "gi-none": frozenset(),
    }
)
FILTERS = [
    (frozenset(), frozenset()),
    (frozenset({"Drama"}), frozenset()),
    (frozenset({"Drama", "Horror"}), frozenset({"Comedy"})),
    (frozenset(), frozenset({"Drama"})),
    (frozenset({"Horror"}), frozenset()),
]


@pytest.mark.parametrize(("include", "exclude"), FILTERS)
def test_the_index_decides_as_the_filters_do(
    include: frozenset[str], exclude: frozenset[str]
) -> None:
    ITEM_NUMBERS.number("gi-unknown-before")  # numbered before the index, not in the catalog
    index = GenreIndex(CATALOG)
    later = "gi-unknown-after"  # numbered after it: beyond its array
    ids = [*CATALOG.genres, "gi-unknown-before", later]
    got = index.allows(ITEM_NUMBERS.numbers(ids), include, exclude)
    filters = Filters(include_genres=include, exclude_genres=exclude)
    assert got.tolist() == [filters.allows(i, CATALOG) for i in ids]


def test_an_empty_catalog_lets_only_unfiltered_items_through() -> None:
    index = GenreIndex(ItemCatalog())
    numbers = ITEM_NUMBERS.numbers(["gi-a", "gi-b"])
    assert index.allows(numbers, frozenset(), frozenset({"Drama"})).tolist() == [True, True]
    assert index.allows(numbers, frozenset({"Drama"}), frozenset()).tolist() == [False, False]
    assert index.allows(np.array([], np.int64), frozenset({"Drama"}), frozenset()).size == 0


def test_one_index_per_catalog_and_the_filters_kept_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert genre_index(CATALOG) is genre_index(CATALOG)
    other = ItemCatalog(dict(CATALOG.genres))  # equal, but another catalog: its own index
    assert genre_index(other) is not genre_index(CATALOG)
    monkeypatch.setattr(module, "FILTERS_KEPT", 2)
    index = GenreIndex(CATALOG)
    numbers = ITEM_NUMBERS.numbers(["gi-drama"])
    for include, exclude in FILTERS:
        index.allows(numbers, include, exclude)
    assert len(index._passing) == 2
