"""MostPop: every user gets the items with the most users, the same list for all."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.algorithms.base import Fitted


class MostPop(Fitted):
    """Scores an item by the number of distinct training users who interacted with it."""

    name = "mostpop"

    def __init__(self) -> None:
        self.params: dict[str, object] = {}

    def _fit(self) -> None:
        self.popularity = np.asarray(self.matrix.sum(axis=0), dtype=np.float32).ravel()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity = arrays["popularity"]

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """The popularity row for every history."""
        return np.tile(self.popularity, (history.shape[0], 1))
