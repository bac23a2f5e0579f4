"""Ranking and the metrics of one held-out item per user.

Ranks are 0-based positions in the user's full ranking of the candidate items (higher score
first, equal scores by LOWER item index, the user's seen items excluded); a held-out item that
cannot be ranked (not a training item, or already seen in training) has rank ``MISS``.

- HR@k: the share of users whose held-out item ranks below k.
- NDCG@k: with one relevant item the ideal DCG is 1, so it is the mean of ``1 / log2(rank + 2)``
  over users whose item ranks below k (0 for the others).
- coverage@k: the share of the training items that appear in at least one user's top k.
"""

from __future__ import annotations

import numpy as np

MISS = np.iinfo(np.int64).max  # the rank of an item that cannot be ranked


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of ``targets[r]`` in row ``r`` of ``scores`` (seen items are ``-inf``).

    ``targets[r] < 0`` or a ``-inf`` target score gives ``MISS``. NaN scores are refused.
    """
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN: a model produced undefined scores")
    rows = np.arange(len(targets))
    valid = targets >= 0
    own = np.where(valid, scores[rows, np.maximum(targets, 0)], -np.inf)[:, None]
    columns = np.arange(scores.shape[1])[None, :]
    better = (scores > own).sum(axis=1)
    tied_before = ((scores == own) & (columns < targets[:, None])).sum(axis=1)
    ranks = (better + tied_before).astype(np.int64)
    return np.where(valid & np.isfinite(own[:, 0]), ranks, MISS)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` best columns, best first (equal scores: lower column); -1 pads rows
    with fewer than ``k`` finite scores."""
    n = scores.shape[1]
    if k >= n:
        kth = np.full(len(scores), -np.inf)
    else:
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]  # argpartition's selection
    out = np.full((len(scores), k), -1, dtype=np.int64)
    for r, row in enumerate(scores):
        above = np.flatnonzero(row > kth[r])
        level = np.flatnonzero((row == kth[r]) & np.isfinite(row))[: k - len(above)]
        chosen = np.concatenate([above, level])
        chosen = chosen[np.lexsort((chosen, -row[chosen]))]
        out[r, : len(chosen)] = chosen
    return out


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """Share of ranks below ``k``."""
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    """Mean of ``1 / log2(rank + 2)`` over ranks below ``k``, 0 for the others."""
    if not len(ranks):
        return 0.0
    hits = ranks < k
    gains = np.zeros(len(ranks))
    gains[hits] = 1.0 / np.log2(ranks[hits].astype(np.float64) + 2.0)
    return float(gains.mean())


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the ``n_items`` that appear in any row of ``top`` (-1 entries ignored)."""
    return len(np.unique(top[top >= 0])) / n_items if n_items else 0.0
