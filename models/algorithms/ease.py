"""EASE (Steck, 2019): a closed-form item-item linear model with an L2 penalty ``lam``.

``B = argmin ||X - XB||² + lam ||B||²`` subject to ``diag(B) = 0`` has the solution
``P = (XᵀX + lam I)⁻¹``, ``B = I - P diagMat(1 / diag(P))``. With fewer users than items the
items×items inverse is not needed: by Woodbury, ``P = (I - Xᵀ K⁻¹ X) / lam`` with the
users×users ``K = XXᵀ + lam I``, so a history ``h`` scores ``h - hP / diag(P)`` where
``hP = (h - (hXᵀ) K⁻¹ X) / lam`` and ``diag(P)_i = (1 - x_iᵀ K⁻¹ x_i) / lam``. The model picks
the smaller inverse (docs/decisions/0013); both forms give the same scores.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.algorithms.base import Fitted


class EASE(Fitted):
    """EASE with L2 penalty ``lam`` > 0."""

    name = "ease"

    def __init__(self, lam: float = 500.0, form: str = "auto") -> None:
        if lam <= 0:
            raise ValueError(f"ease: lam must be > 0, got {lam}")
        if form not in ("auto", "items", "users"):
            raise ValueError(f"ease: form must be auto, items or users, got {form!r}")
        self.params = {"lam": float(lam), "form": form}

    def _fit(self) -> None:
        users, items = self.matrix.shape
        lam = self.params["lam"]
        x = self.matrix.astype(np.float64)
        form = self.params["form"]
        self.dual = form == "users" or (form == "auto" and users < items)
        if self.dual:
            kernel = (x @ x.T).toarray() + lam * np.eye(users)
            self.k_inv = np.linalg.inv(kernel)
            kx = sp.csr_matrix(x).T @ self.k_inv  # items × users: Xᵀ K⁻¹
            quad = np.asarray(x.multiply(kx.T).sum(axis=0)).ravel()
            self.diag_p = (1.0 - quad) / lam
        else:
            gram = (x.T @ x).toarray() + lam * np.eye(items)
            p = np.linalg.inv(gram)
            b = -p / np.diag(p)
            np.fill_diagonal(b, 0.0)
            self.b = b.astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        if self.dual:
            return {"k_inv": self.k_inv, "diag_p": self.diag_p}
        return {"b": self.b}

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        self.dual = "k_inv" in arrays
        if self.dual:
            self.k_inv, self.diag_p = arrays["k_inv"], arrays["diag_p"]
        else:
            self.b = arrays["b"]

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """``hB`` for each history row ``h``."""
        if not self.dual:
            return np.asarray(history @ self.b, dtype=np.float32)
        x = self.matrix
        h = history.astype(np.float64)
        hp = (h.toarray() - ((h @ x.T) @ self.k_inv) @ x) / self.params["lam"]
        return np.asarray(h.toarray() - hp / self.diag_p, dtype=np.float32)
