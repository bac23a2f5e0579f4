"""ItemKNN: cosine item-item similarity, each item's ``k`` nearest neighbours, with shrinkage.

``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|) sqrt(|U_j|) + shrink)`` over the binary matrix (U_i: the
users of item i). Column j of the weight matrix keeps the ``k`` largest positive similarities of
item j (equal values: lower index first), its diagonal is zero; a user's score for item j is
the sum of its weights from the items in the user's history.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.algorithms.base import Fitted

BLOCK = 1024  # columns of the Gram matrix made dense at a time (items × BLOCK float32)


class ItemKNN(Fitted):
    """Item-based nearest neighbours (cosine); ``k`` neighbours, ``shrink`` >= 0."""

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        if k < 1:
            raise ValueError(f"itemknn: k must be at least 1, got {k}")
        if shrink < 0:
            raise ValueError(f"itemknn: shrink must be >= 0, got {shrink}")
        self.params = {"k": int(k), "shrink": float(shrink)}

    def _fit(self) -> None:
        x = self.matrix.tocsc()
        xt = x.T.tocsr()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
        n = x.shape[1]
        rows = []  # row j of a block: item j's similarities (the Gram matrix is symmetric)
        for start in range(0, n, BLOCK):
            stop = min(start + BLOCK, n)
            gram = (xt[start:stop] @ x).toarray()
            sim = gram / (np.outer(norms[start:stop], norms) + self.params["shrink"])
            sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
            rows.append(sp.csr_matrix(_keep_top(sim, self.params["k"])))
        self.weights = sp.vstack(rows, format="csr").T.tocsr().astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        w = self.weights
        return {"w_data": w.data, "w_indices": w.indices, "w_indptr": w.indptr}

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(self.items)
        parts = (arrays["w_data"], arrays["w_indices"], arrays["w_indptr"])
        self.weights = sp.csr_matrix(parts, shape=(n, n))

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Sum of the weights from the history's items, per item."""
        return np.asarray((history @ self.weights).toarray(), dtype=np.float32)


def _keep_top(sim: np.ndarray, k: int) -> np.ndarray:
    """``sim`` with each row cut to its ``k`` largest positive values (ties: lower column)."""
    if k >= sim.shape[1]:
        return np.where(sim > 0, sim, 0.0)
    kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1 : k]  # each row's k-th largest value
    above = sim > kth
    level = sim == kth
    room = k - above.sum(axis=1, keepdims=True)
    keep = above | (level & (np.cumsum(level, axis=1) <= room))
    return np.where(keep & (sim > 0), sim, 0.0)
