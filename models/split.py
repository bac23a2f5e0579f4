"""Temporal leave-last-out: each user's latest interaction is held out, the earlier ones train.

"Latest" is the largest timestamp; among equal timestamps, the one LATER in the log's order (the
log is sorted by time, stably, so: the larger position in the input; for MovieLens, the larger
row of the ratings file). Users with fewer than ``min_interactions`` (default 2) are not held
out: all their interactions stay in training and they are not evaluated (with a single
interaction there would be nothing to learn them from). On the full MovieLens data every one of
the 671 users has at least 20 ratings, so all are evaluated. The same function, applied to the
training log, makes the validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.interactions import InteractionLog


@dataclass(frozen=True)
class Split:
    """The training log and the held-out (user id, item id) pairs, one per evaluated user."""

    train: InteractionLog
    test_users: np.ndarray  # str
    test_items: np.ndarray  # str


def leave_last_out(log: InteractionLog, min_interactions: int = 2) -> Split:
    """Hold out each user's latest interaction (ties: the later row) when they have enough."""
    if min_interactions < 2:
        raise ValueError(f"min_interactions must be at least 2, got {min_interactions}")
    n = len(log)
    # first occurrence in the reversed log = last occurrence in time order
    _, last_reversed, counts = np.unique(log.user_ids[::-1], return_index=True, return_counts=True)
    held = np.sort((n - 1 - last_reversed)[counts >= min_interactions])
    keep = np.ones(n, dtype=bool)
    keep[held] = False
    return Split(
        train=log.take(np.flatnonzero(keep)),
        test_users=log.user_ids[held],
        test_items=log.item_ids[held],
    )
