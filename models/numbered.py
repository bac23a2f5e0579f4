"""Item ids as numbers, and candidate lists as numpy arrays: what ``rank`` sums in C.

A cache miss sums, per candidate, the strengths of up to ``SOURCE_ITEMS`` lists of up to
``COVIS_KEEP`` co-visited items (4,000 terms, 2,500 candidates): a loop over Python dicts was half
the worker's CPU per miss (docs/decisions/0023). ``rank`` works instead on each list's candidates
numbered (``ITEM_NUMBERS``: one number per item id, for the life of the process) with their
strengths as float64 arrays, which numpy sums in the same order, to the same floats.

A list is numbered once. The item rows the worker reads carry their co-visits numbered
(``NumberedCounts``, made by ``with_numbered_covis`` as a row is read, and kept with it by
``models.item_rows``); any other list (a promoted model's neighbours, rows that tests and the
evaluation rank) is numbered by ``numbered``, which keeps the arrays of the last
``NUMBERED_LISTS`` lists by identity, holding each so that its identity is not reused. The lists
must not change once numbered: the feature store's rows never do (an update makes a new row).

Memory: ``ITEM_NUMBERS`` holds every item id the process ranked (a catalog of a million items:
about 100 MB); ``numbered`` holds at most ``NUMBERED_LISTS`` lists and their arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import islice
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from feature_store.features import ItemFeatures

# a recent item's neighbours: its co-visited items (a dict) or a model's list, best first
Entries = Mapping[str, float] | Sequence[tuple[str, float]]
Numbers = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
T = TypeVar("T")
R = TypeVar("R")

NUMBERED_LISTS = 20_000  # lists kept numbered by identity (a model's lists, in the worker)


class ItemNumbers:
    """A number for every item id asked about, given in order (0, 1, ...) and kept."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}
        self._ids: list[str] = []
        self._new = threading.Lock()  # the evaluation may rank in threads

    def number(self, item_id: str) -> int:
        """``item_id``'s number, given now if it has none."""
        found = self._numbers.get(item_id)
        if found is not None:
            return found
        with self._new:
            found = self._numbers.get(item_id)
            if found is None:
                found = len(self._ids)
                self._ids.append(item_id)
                self._numbers[item_id] = found
            return found

    def numbers(self, item_ids: Iterable[str]) -> Numbers:
        """The numbers of ``item_ids``, in order (given now to those that have none)."""
        ids = list(item_ids)
        found = list(map(self._numbers.get, ids))
        if None in found:  # some are new: numbered one by one
            found = list(map(self.number, ids))
        return np.array(found, dtype=np.int64)

    def known(self, item_ids: Iterable[str]) -> Numbers:
        """The numbers of those of ``item_ids`` that have one (no candidate has the others)."""
        found = [n for n in map(self._numbers.get, item_ids) if n is not None]
        return np.array(found, dtype=np.int64)

    def id_of(self, number: int) -> str:
        """The item id numbered ``number``."""
        return self._ids[number]

    def __len__(self) -> int:
        return len(self._ids)


ITEM_NUMBERS = ItemNumbers()


class NumberedCounts(dict[str, int]):
    """Co-visit counts (a dict, as read) with their positive entries numbered, in order."""

    __slots__ = ("numbers", "strengths")

    def __init__(self, counts: Mapping[str, int]) -> None:
        super().__init__(counts)
        self.numbers, self.strengths = _arrays(self)


def with_numbered_covis(features: ItemFeatures) -> ItemFeatures:
    """``features`` with its co-visits numbered (``rank`` then sums them without numbering)."""
    return replace(features, covis=NumberedCounts(features.covis))


def _arrays(entries: Entries) -> tuple[Numbers, Floats]:
    pairs = entries.items() if isinstance(entries, Mapping) else entries
    positive = [(c, s) for c, s in pairs if s > 0]
    numbers = ITEM_NUMBERS.numbers([c for c, _ in positive])
    return numbers, np.array([s for _, s in positive], dtype=np.float64)


class IdentityMemo(Generic[T, R]):
    """``make(obj)`` for the last ``size`` objects asked, kept by their identity (each object
    held, so that its identity is not reused); past ``size`` the older half is dropped (made
    again if asked again: a plain dict, looked up in C, and no bookkeeping per look-up). The
    objects must not change once asked for."""

    def __init__(self, make: Callable[[T], R], size: int) -> None:
        self._make = make
        self._size = size
        self._kept: dict[int, tuple[T, R]] = {}
        self._lock = threading.Lock()

    def __call__(self, obj: T) -> R:
        kept = self._kept.get(id(obj))
        if kept is not None and kept[0] is obj:
            return kept[1]
        made = self._make(obj)
        with self._lock:
            if len(self._kept) >= self._size:
                for old in list(islice(self._kept, max(1, self._size // 2))):
                    del self._kept[old]
            self._kept[id(obj)] = (obj, made)
        return made


_lists: IdentityMemo[Entries, tuple[Numbers, Floats]] = IdentityMemo(_arrays, NUMBERED_LISTS)


def numbered(entries: Entries) -> tuple[Numbers, Floats]:
    """The candidates of ``entries`` with a positive strength, numbered, and their strengths, in
    the list's order (a row's ``NumberedCounts`` as they are; other lists numbered once)."""
    if isinstance(entries, NumberedCounts):
        return entries.numbers, entries.strengths
    return _lists(entries)
