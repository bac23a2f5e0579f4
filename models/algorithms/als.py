"""ALS for implicit feedback (Hu, Koren and Volinsky, 2008) from the ``implicit`` library, on CPU.

Confidence ``1 + alpha`` on each interaction (the matrix is binary), ``factors`` latent
dimensions, L2 ``regularization``. Deterministic: a fixed ``seed`` and one solver thread, with
BLAS held to one thread while fitting (the library warns otherwise, and threads reorder sums).
A user's score for an item is the dot product of their factors; ``score_history`` solves a
history's factors against the item factors (the library's ``recalculate_user``), and an item's
neighbours are the items of highest cosine between item factors.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from models.algorithms.base import Fitted, top_indices


class ALS(Fitted):
    """Implicit ALS; ``factors``, ``regularization``, ``alpha``, ``iterations``, ``seed``."""

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> None:
        if factors < 1 or iterations < 1:
            raise ValueError(
                f"als: factors and iterations must be >= 1, got {factors}, {iterations}"
            )
        if regularization < 0 or alpha <= 0:
            raise ValueError(f"als: need regularization >= 0, alpha > 0: {regularization}, {alpha}")
        self.params = {
            "factors": int(factors),
            "regularization": float(regularization),
            "alpha": float(alpha),
            "iterations": int(iterations),
            "seed": int(seed),
        }

    def _solver(self) -> AlternatingLeastSquares:
        p = self.params
        return AlternatingLeastSquares(
            factors=p["factors"],
            regularization=p["regularization"],
            alpha=p["alpha"],
            iterations=p["iterations"],
            random_state=p["seed"],
            num_threads=1,
        )

    def _fit(self) -> None:
        with threadpool_limits(1, "blas"):  # the library checks BLAS threads when built
            self.solver = self._solver()
            self.solver.fit(self.matrix, show_progress=False)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.solver.user_factors, "item_factors": self.solver.item_factors}

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        with threadpool_limits(1, "blas"):
            self.solver = self._solver()
        self.solver.user_factors = arrays["user_factors"]
        self.solver.item_factors = arrays["item_factors"]

    def score(self, users: np.ndarray) -> np.ndarray:
        """Dot products of the users' factors with every item's."""
        factors = self.solver.user_factors[np.asarray(users)]
        return np.asarray(factors @ self.solver.item_factors.T, dtype=np.float32)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Factors solved for each history row, dotted with every item's."""
        rows = np.arange(history.shape[0])
        with threadpool_limits(1, "blas"):
            factors = self.solver.recalculate_user(rows, sp.csr_matrix(history, dtype=np.float32))
        return np.asarray(factors @ self.solver.item_factors.T, dtype=np.float32)

    def similar_items(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """Items by cosine of item factors, best first (ties: lower index); [] if unknown."""
        index = self.item_index.get(item_id)
        if index is None:
            return []
        factors = self.solver.item_factors
        norms = np.linalg.norm(factors, axis=1)
        norms[norms == 0] = 1.0
        cosine = (factors @ factors[index]) / (norms * norms[index])
        cosine[index] = -np.inf
        return [(self.items[j], float(cosine[j])) for j in top_indices(cosine, k)]
