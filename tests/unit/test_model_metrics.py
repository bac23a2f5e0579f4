"""Ranking and metrics on hand-made cases: ties by lower index, seen and cold items miss."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from models.metrics import MISS, coverage, hit_rate, ndcg, target_ranks, top_k


def test_rank_counts_better_items_and_ties_before_the_target() -> None:
    scores = np.array([[3.0, 1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert target_ranks(scores, np.array([2, 2])).tolist() == [1, 2]


def test_seen_and_cold_targets_are_misses() -> None:
    scores = np.array([[1.0, -np.inf, 0.5], [1.0, 2.0, 3.0]])
    assert target_ranks(scores, np.array([1, -1])).tolist() == [MISS, MISS]


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(np.array([[np.nan, 1.0]]), np.array([0]))


def test_hit_rate_and_ndcg_by_hand() -> None:
    ranks = np.array([0, 1, 9, 10, MISS])
    assert hit_rate(ranks, 10) == pytest.approx(3 / 5)
    assert hit_rate(ranks, 1) == pytest.approx(1 / 5)
    expected = (1 + 1 / math.log2(3) + 1 / math.log2(11)) / 5
    assert ndcg(ranks, 10) == pytest.approx(expected)
    assert ndcg(ranks, 20) == pytest.approx(expected + 1 / math.log2(12) / 5)
    assert hit_rate(np.array([], dtype=np.int64), 10) == 0.0


def test_top_k_orders_by_score_then_lower_index_and_pads() -> None:
    scores = np.array([[1.0, 2.0, 2.0, 0.0], [-np.inf, 1.0, -np.inf, -np.inf]])
    assert top_k(scores, 3).tolist() == [[1, 2, 0], [1, -1, -1]]
    assert top_k(scores[:1], 2).tolist() == [[1, 2]]


def test_coverage_counts_distinct_items_over_the_catalogue() -> None:
    assert coverage(np.array([[0, 1], [1, -1]]), 4) == pytest.approx(0.5)


small_scores = arrays(
    np.float32,
    st.tuples(st.integers(1, 4), st.integers(1, 12)),
    elements=st.sampled_from([0.0, 1.0, 2.0, -np.inf]),
)


def _naive_order(row: np.ndarray) -> list[int]:
    return sorted(range(len(row)), key=lambda j: (-row[j], j))


@given(small_scores, st.data())
def test_ranks_match_a_sort_by_score_then_index(scores: np.ndarray, data: st.DataObject) -> None:
    targets = np.array([data.draw(st.integers(0, scores.shape[1] - 1)) for _ in scores])
    ranks = target_ranks(scores, targets)
    for row, target, rank in zip(scores, targets, ranks, strict=True):
        expected = MISS if row[target] == -np.inf else _naive_order(row).index(target)
        assert rank == expected


@given(small_scores, st.integers(1, 6))
def test_top_k_matches_a_sort_by_score_then_index(scores: np.ndarray, k: int) -> None:
    for row, top in zip(scores, top_k(scores, k), strict=True):
        expected = [j for j in _naive_order(row) if row[j] > -np.inf][:k]
        assert top.tolist() == expected + [-1] * (k - len(expected))
