"""Interactions for batch models: an event log in columns, and the user×item matrix built from it.

Implicit feedback: every event of a user on an item is an interaction, whatever its type or value
(a MovieLens rating of 0.5 counts as much as a 5). The matrix is BINARY: a user who interacted
with an item several times has a single 1.0 in its cell, so repeats never outweigh breadth and
the event's ``value`` is ignored.

Index maps follow FIRST APPEARANCE in the log's order (the log is in event-time order, ties in
the order given), so the same events always give the same indices, and "lower item index" in a
tie rule means "the item seen first".

The lake's rows come in as events too (``OfflineStore.read_events``), so ``InteractionLog
.from_events`` serves both MovieLens (``producers.movielens.load_movielens``) and the lake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from producers.events import Event


@dataclass(frozen=True)
class InteractionLog:
    """Events reduced to columns, in event-time order (equal times keep their given order).

    ``order`` is each row's position in the original input, kept through splits so that tie
    rules can refer to it. ``events`` holds the source events when the log was built from them
    (models that replay events, like the streaming recommender, need them).
    """

    user_ids: np.ndarray  # str, one per interaction
    item_ids: np.ndarray  # str
    timestamps: np.ndarray  # int64, UTC milliseconds
    order: np.ndarray  # int64, position in the input
    events: tuple[Event, ...] | None = None

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> InteractionLog:
        """The log of ``events``, sorted by timestamp (stable: equal times keep input order)."""
        events = tuple(events)
        return cls.from_columns(
            [e.user_id for e in events],
            [e.item_id for e in events],
            [e.timestamp for e in events],
            events=events,
        )

    @classmethod
    def from_columns(
        cls,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        timestamps: Sequence[int],
        events: tuple[Event, ...] | None = None,
    ) -> InteractionLog:
        """The log of parallel columns (e.g. a lake query's result), sorted like ``from_events``."""
        if not len(user_ids) == len(item_ids) == len(timestamps):
            raise ValueError(
                f"columns differ in length: user_ids {len(user_ids)}, item_ids {len(item_ids)}, "
                f"timestamps {len(timestamps)}"
            )
        times = np.asarray(timestamps, dtype=np.int64)
        sort = np.argsort(times, kind="stable")
        return cls(
            user_ids=np.asarray(user_ids, dtype=str)[sort],
            item_ids=np.asarray(item_ids, dtype=str)[sort],
            timestamps=times[sort],
            order=sort.astype(np.int64),
            events=None if events is None else tuple(events[i] for i in sort),
        )

    def __len__(self) -> int:
        return len(self.user_ids)

    def take(self, rows: np.ndarray) -> InteractionLog:
        """The sub-log of ``rows`` (ascending positions keep time order), ``order`` carried over."""
        return InteractionLog(
            user_ids=self.user_ids[rows],
            item_ids=self.item_ids[rows],
            timestamps=self.timestamps[rows],
            order=self.order[rows],
            events=None if self.events is None else tuple(self.events[i] for i in rows),
        )


@dataclass(frozen=True)
class Interactions:
    """A binary CSR user×item matrix with the index maps of its rows and columns.

    ``users[u]``/``items[i]`` are the ids of row ``u`` and column ``i``; ``user_index`` and
    ``item_index`` map back. Every user and item in the matrix has at least one interaction.
    """

    matrix: sp.csr_matrix  # float32, users × items, entries 1.0
    users: tuple[str, ...]
    items: tuple[str, ...]
    user_index: dict[str, int]
    item_index: dict[str, int]
    log: InteractionLog

    @classmethod
    def from_log(cls, log: InteractionLog) -> Interactions:
        """The matrix of ``log``; indices by first appearance in the log's (time) order."""
        users, user_rows = _first_appearance(log.user_ids)
        items, item_cols = _first_appearance(log.item_ids)
        matrix = sp.csr_matrix(
            (np.ones(len(log), dtype=np.float32), (user_rows, item_cols)),
            shape=(len(users), len(items)),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # repeats collapse to one interaction
        return cls(
            matrix=matrix,
            users=tuple(users),
            items=tuple(items),
            user_index={u: k for k, u in enumerate(users)},
            item_index={i: k for k, i in enumerate(items)},
            log=log,
        )

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Interactions:
        """Shorthand for ``from_log(InteractionLog.from_events(events))``."""
        return cls.from_log(InteractionLog.from_events(events))

    @property
    def n_users(self) -> int:
        """Rows of the matrix."""
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        """Columns of the matrix."""
        return self.matrix.shape[1]


def _first_appearance(ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct ids in order of first appearance, and each row's index into them."""
    distinct, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[by_first] = np.arange(len(distinct))
    return [str(x) for x in distinct[by_first]], rank[inverse]
