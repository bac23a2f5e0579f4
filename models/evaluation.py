"""Offline evaluation: temporal leave-last-out, validation-tuned, full ranking.

Protocol (docs/decisions/0012):

1. ``leave_last_out`` (``models.split``) holds out each user's latest interaction (equal
   timestamps: the later row); users with a single interaction are not evaluated.
2. Each model's grid is tried on a VALIDATION split made the same way from the training log
   only; the parameters with the best validation NDCG@10 win (equal: the first in grid order).
3. The model is refitted with those parameters on the whole training log and ranks, for each
   evaluated user, ALL training items (items with at least one training interaction), the
   user's training items excluded; equal scores rank the lower item index (first appearance in
   the log) first. A held-out item that is not a training item is a miss (it stays in the
   denominator): that is how MostPop gives HR@10 0.0432 and NDCG@10 0.0198 on all 100,004
   MovieLens ratings (29 hits of 671 users).
4. HR@10/20, NDCG@10/20, coverage@10 (``models.metrics``), ``fit_s`` (the final fit) and
   ``score_ms_per_user`` (the model's ``score`` calls over the test users, per user; masking
   and ranking not included). Everything but the two timings is deterministic.

Extra models plug in through ``ModelSpec``: a factory taking the grid's parameters as keyword
arguments and returning an unfitted ``Model``; its ``fit`` receives ``Interactions`` whose
``log.events`` holds the training events (a streaming model can replay them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.algorithms import ALS, EASE, Content, ItemKNN, Model, MostPop
from models.algorithms.content import ItemText
from models.interactions import InteractionLog, Interactions
from models.metrics import coverage, hit_rate, ndcg, target_ranks, top_k
from models.split import leave_last_out

BATCH_USERS = 256  # users scored at a time: 256 × items float32 scores
SELECT_BY = "ndcg@10"


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model (``factory(**params)``) and the grid its parameters are tuned on."""

    factory: Callable[..., Model]
    grid: Sequence[dict[str, Any]] = field(default_factory=lambda: ({},))


def default_specs(metadata: Mapping[str, ItemText]) -> dict[str, ModelSpec]:
    """The batch models and their (small) grids; ``metadata`` feeds the content model."""
    return {
        "mostpop": ModelSpec(MostPop),
        "itemknn": ModelSpec(ItemKNN, _grid(k=(50, 100, 200), shrink=(0.0, 10.0, 50.0))),
        "ease": ModelSpec(EASE, _grid(lam=(100.0, 250.0, 500.0, 1000.0, 2000.0))),
        "als": ModelSpec(
            ALS, _grid(factors=(32, 64, 128), regularization=(0.01, 0.1), alpha=(1.0, 5.0))
        ),
        "content": ModelSpec(
            lambda **p: Content(metadata, **p),
            _grid(genre_weight=(0.5, 1.0, 2.0), decade_weight=(0.0, 1.0)),
        ),
    }


def _grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of ``axes``, the first axis varying slowest."""
    combos: list[dict[str, Any]] = [{}]
    for name, values in axes.items():
        combos = [{**c, name: v} for c in combos for v in values]
    return combos


def measure(
    model: Model, train: Interactions, test_users: np.ndarray, test_items: np.ndarray
) -> dict[str, float]:
    """The metrics of a fitted ``model`` on the held-out (user, item) pairs (ids)."""
    users = np.array([train.user_index[u] for u in test_users], dtype=np.int64)
    targets = np.array([train.item_index.get(i, -1) for i in test_items], dtype=np.int64)
    ranks, tops, seconds = [], [], 0.0
    for start in range(0, len(users), BATCH_USERS):
        batch = users[start : start + BATCH_USERS]
        began = time.perf_counter()
        scores = np.array(model.score(batch), dtype=np.float32)
        seconds += time.perf_counter() - began
        if scores.shape != (len(batch), train.n_items):
            raise ValueError(
                f"{model.name}: score returned shape {scores.shape}, "
                f"expected {(len(batch), train.n_items)}"
            )
        seen = train.matrix[batch].tocoo()
        scores[seen.row, seen.col] = -np.inf
        ranks.append(target_ranks(scores, targets[start : start + BATCH_USERS]))
        tops.append(top_k(scores, 10))
    all_ranks = np.concatenate(ranks) if ranks else np.array([], dtype=np.int64)
    top10 = np.concatenate(tops) if tops else np.zeros((0, 10), dtype=np.int64)
    return {
        "hr@10": hit_rate(all_ranks, 10),
        "ndcg@10": ndcg(all_ranks, 10),
        "hr@20": hit_rate(all_ranks, 20),
        "ndcg@20": ndcg(all_ranks, 20),
        "coverage@10": coverage(top10, train.n_items),
        "score_ms_per_user": 1000 * seconds / max(len(users), 1),
    }


def fit_and_measure(
    spec: ModelSpec, params: dict[str, Any], log: InteractionLog
) -> tuple[Model, dict[str, float]]:
    """Fit ``spec(**params)`` on ``log`` minus each user's last interaction; measure on those."""
    split = leave_last_out(log)
    train = Interactions.from_log(split.train)
    began = time.perf_counter()
    model = spec.factory(**params).fit(train)
    fit_s = time.perf_counter() - began
    metrics = measure(model, train, split.test_users, split.test_items)
    return model, {**metrics, "fit_s": fit_s}


def tune(spec: ModelSpec, train_log: InteractionLog) -> tuple[dict[str, Any], float]:
    """The grid point with the best validation NDCG@10 (first wins ties) and that score."""
    best: tuple[dict[str, Any], float] | None = None
    for params in spec.grid:
        _, metrics = fit_and_measure(spec, params, train_log)
        if best is None or metrics[SELECT_BY] > best[1]:
            best = (dict(params), metrics[SELECT_BY])
    if best is None:
        raise ValueError("a model spec needs at least one grid point")
    return best


def evaluate(
    log: InteractionLog,
    specs: Mapping[str, ModelSpec],
    names: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Tune, refit and measure each model of ``names`` (default: all of ``specs``)."""
    names = list(specs) if names is None else list(names)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(specs)}")
    split = leave_last_out(log)
    results = {}
    for name in names:
        spec = specs[name]
        params, validation = (
            (dict(spec.grid[0]), None) if len(spec.grid) == 1 else tune(spec, split.train)
        )
        _, metrics = fit_and_measure(spec, params, log)
        results[name] = {**metrics, "params": params, "validation_ndcg@10": validation}
        if progress:
            progress(f"{name}: hr@10 {metrics['hr@10']:.4f} ndcg@10 {metrics['ndcg@10']:.4f}")
    return {
        "models": results,
        "data": {
            "interactions": len(log),
            "users": len(np.unique(log.user_ids)),
            "items": len(np.unique(log.item_ids)),
            "test_users": len(split.test_users),
        },
        "protocol": "temporal leave-last-out (ties: later row), full ranking over training "
        "items, seen excluded, tuned on validation ndcg@10",
    }
