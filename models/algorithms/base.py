"""What every batch model offers, and the artifact format they share.

A model is fitted on an ``Interactions`` matrix and then scores users of that matrix over ALL its
items (full ranking: the caller masks what the user has seen). Item-neighbour models also score
any history (``score_history``) and list an item's neighbours (``similar_items``): the items the
model would recommend to a user who has only that item, which is what a serving worker turns
into candidates.

Artifacts are ``numpy.savez_compressed`` archives, read with ``allow_pickle=False``: every array
is numeric or fixed-width unicode, the parameters are one JSON string. Each holds the model's
name, its parameters, the training matrix (CSR parts) with its user and item ids, and the
model's own arrays, so a model read back scores and answers ``similar_items`` on its own.
"""

from __future__ import annotations

import io
import json
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from models.interactions import Interactions


class ArtifactError(ValueError):
    """Bytes that are not an artifact of the model asked to read them."""


@runtime_checkable
class Model(Protocol):
    """A batch recommender. ``score`` rows follow ``users``; columns are the training items."""

    name: ClassVar[str]
    params: dict[str, Any]

    def fit(self, train: Interactions) -> Self:
        """Learn from ``train``; returns the model itself."""
        ...

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores (float32, ``len(users)`` × items) of training users given by row index."""
        ...

    def to_bytes(self) -> bytes:
        """The fitted model as an artifact (npz, no pickle)."""
        ...


@runtime_checkable
class ItemNeighbours(Model, Protocol):
    """A model that scores arbitrary histories and so has item neighbours."""

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores (float32, rows × items) of histories given as binary rows over the items."""
        ...

    def similar_items(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (item id, score) pairs, best first, never ``item_id`` itself."""
        ...


class Fitted:
    """State shared by the models here: the training matrix and its ids, and the artifact I/O.

    Subclasses set ``name``, implement ``_fit`` and ``_arrays``/``_load`` for their own arrays.
    """

    name: ClassVar[str]
    matrix: sp.csr_matrix
    users: tuple[str, ...]
    items: tuple[str, ...]
    item_index: dict[str, int]
    params: dict[str, Any]

    def fit(self, train: Interactions) -> Self:
        """Learn from ``train``; returns the model itself."""
        self._set_data(train.matrix, train.users, train.items)
        self._fit()
        return self

    def _set_data(
        self, matrix: sp.csr_matrix, users: tuple[str, ...], items: tuple[str, ...]
    ) -> None:
        self.matrix = matrix.astype(np.float32).tocsr()
        self.users, self.items = users, items
        self.item_index = {item: k for k, item in enumerate(items)}

    def _fit(self) -> None:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The fitted model as an npz artifact (no pickle)."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            model=np.array(self.name),
            params=np.array(json.dumps(self.params, sort_keys=True)),
            users=np.array(self.users, dtype=str),
            items=np.array(self.items, dtype=str),
            indptr=self.matrix.indptr,
            indices=self.matrix.indices,
            **self._arrays(),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """A model read back from ``to_bytes`` output; ``ArtifactError`` if it is not one."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"not a model artifact (npz): {exc}") from exc
        found = str(arrays.get("model", ""))
        if found != cls.name:
            raise ArtifactError(f"artifact holds model {found!r}, not {cls.name!r}")
        model = cls(**json.loads(str(arrays["params"])))
        users = tuple(str(u) for u in arrays["users"])
        items = tuple(str(i) for i in arrays["items"])
        ones = np.ones(len(arrays["indices"]), dtype=np.float32)
        matrix = sp.csr_matrix(
            (ones, arrays["indices"], arrays["indptr"]), shape=(len(users), len(items))
        )
        model._set_data(matrix, users, items)
        model._load(arrays)
        return model

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of training users (by row index) over all training items."""
        return self.score_history(self.matrix[np.asarray(users)])

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores (float32) of binary history rows over the training items."""
        raise NotImplementedError

    def similar_items(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """The top ``k`` of the scores of a history holding only ``item_id`` (ties: lower index).

        Empty for an item the model does not know.
        """
        index = self.item_index.get(item_id)
        if index is None:
            return []
        one = sp.csr_matrix(([1.0], ([0], [index])), shape=(1, len(self.items)), dtype=np.float32)
        scores = self.score_history(one)[0]
        scores[index] = -np.inf
        return [(self.items[j], float(scores[j])) for j in top_indices(scores, k)]


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` best finite scores of a row, best first; ties: lower index."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) <= k:
        chosen = finite
    else:
        kth = np.partition(scores[finite], len(finite) - k)[len(finite) - k]
        above = finite[scores[finite] > kth]
        level = finite[scores[finite] == kth][: k - len(above)]
        chosen = np.concatenate([above, level])
    return chosen[np.lexsort((chosen, -scores[chosen]))]
