"""Genre filters over item numbers: one array lookup a request instead of a call a candidate.

A catalog's items carry few distinct genre sets (MovieLens: 9,738 items, 20 genres, under a
thousand sets). ``GenreIndex`` maps each item number to its set (0: no genres, as for an item the
catalog does not know); which sets a genre filter lets through is worked out once per filter (a
loop over the sets, the last ``FILTERS_KEPT`` filters kept), and a request's candidates then pass
or not in one numpy lookup. Memory: four bytes an item number.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from models.catalog import ItemCatalog
from models.numbered import ITEM_NUMBERS, IdentityMemo, Numbers

FILTERS_KEPT = 256

Passing = npt.NDArray[np.bool_]


class GenreIndex:
    """Which item numbers of ``catalog`` a genre filter lets through (see module)."""

    def __init__(self, catalog: ItemCatalog) -> None:
        ids = list(catalog.genres)
        numbers = ITEM_NUMBERS.numbers(ids)  # every catalog item has a number below len() now
        indices: dict[frozenset[str], int] = {frozenset(): 0}
        of = [indices.setdefault(catalog.genres[i], len(indices)) for i in ids]
        self._set_of = np.zeros(int(numbers.max(initial=-1)) + 1, np.int32)
        self._set_of[numbers] = of
        self._sets = list(indices)
        self._passing: OrderedDict[tuple[frozenset[str], frozenset[str]], Passing] = OrderedDict()
        self._lock = threading.Lock()

    def allows(self, numbers: Numbers, include: frozenset[str], exclude: frozenset[str]) -> Passing:
        """For each of ``numbers``, whether its item has one of ``include`` (when given) and
        none of ``exclude``, as ``models.filters.Filters.allows`` decides."""
        passing = self._passing_sets(include, exclude)
        inside = numbers < len(self._set_of)  # numbered after the index: not in the catalog
        sets = np.zeros(len(numbers), np.int32)
        sets[inside] = self._set_of[numbers[inside]]
        return passing[sets]

    def _passing_sets(self, include: frozenset[str], exclude: frozenset[str]) -> Passing:
        key = (include, exclude)
        with self._lock:
            passing = self._passing.get(key)
            if passing is not None:
                self._passing.move_to_end(key)
                return passing
        passing = np.array(
            [(not include or bool(s & include)) and not s & exclude for s in self._sets], bool
        )
        with self._lock:
            self._passing[key] = passing
            while len(self._passing) > FILTERS_KEPT:
                self._passing.popitem(last=False)
        return passing


# a catalog lives as long as the model it came with: a few are kept
genre_index: IdentityMemo[ItemCatalog, GenreIndex] = IdentityMemo(GenreIndex, 4)
