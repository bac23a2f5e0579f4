"""The batch models on tiny matrices against hand computations, and their artifacts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.algorithms import (
    ALS,
    EASE,
    ArtifactError,
    Content,
    ItemKNN,
    ItemNeighbours,
    MostPop,
    read_artifact,
)
from models.interactions import InteractionLog, Interactions
from models.serving import served_model
from producers.movielens import Movie


def _data(matrix: list[list[int]]) -> Interactions:
    """Interactions of ``matrix`` with users u0.. and items i0.. in row and column order."""
    csr = sp.csr_matrix(np.array(matrix, dtype=np.float32))
    users = tuple(f"u{u}" for u in range(csr.shape[0]))
    items = tuple(f"i{i}" for i in range(csr.shape[1]))
    coo = csr.tocoo()
    log = InteractionLog.from_columns(
        [users[u] for u in coo.row], [items[i] for i in coo.col], list(range(coo.nnz))
    )
    return Interactions(
        matrix=csr,
        users=users,
        items=items,
        user_index={u: k for k, u in enumerate(users)},
        item_index={i: k for k, i in enumerate(items)},
        log=log,
    )


KNN = [[1, 1, 0], [1, 1, 1], [0, 0, 1]]  # co-counts (0,1)=2, (0,2)=1, (1,2)=1; each item 2 users


def test_itemknn_cosine_with_shrinkage_by_hand() -> None:
    model = ItemKNN(k=2, shrink=1.0).fit(_data(KNN))
    third, two_thirds = 1 / 3, 2 / 3  # 2/(2+1), 1/(2+1)
    expected = [[0, two_thirds, third], [two_thirds, 0, third], [third, third, 0]]
    assert model.weights.toarray() == pytest.approx(np.array(expected))
    assert model.score(np.array([0]))[0] == pytest.approx([two_thirds, two_thirds, 2 * third])


def test_itemknn_keeps_k_neighbours_ties_to_the_lower_index() -> None:
    model = ItemKNN(k=1, shrink=0.0).fit(_data(KNN))
    # item 2's neighbours 0 and 1 tie at 1/2: column 2 keeps item 0
    assert model.weights.toarray() == pytest.approx(np.array([[0, 1, 0.5], [1, 0, 0], [0, 0, 0]]))
    neighbours = model.similar_items("i0", 5)
    assert [item for item, _ in neighbours] == ["i1", "i2"]
    assert [score for _, score in neighbours] == pytest.approx([1.0, 0.5])
    assert model.similar_items("unknown", 5) == []


def test_ease_two_items_by_hand() -> None:
    # G = [[2,1],[1,2]], G + I inverted = [[3,-1],[-1,3]]/8, B_01 = (1/8)/(3/8) = 1/3
    data = _data([[1, 1], [1, 0], [0, 1]])
    for form in ("items", "users"):
        model = EASE(lam=1.0, form=form).fit(data)
        assert model.score(np.array([1, 2])) == pytest.approx(np.array([[0, 1 / 3], [1 / 3, 0]]))


def test_ease_user_form_equals_item_form() -> None:
    rng = np.random.default_rng(7)
    matrix = (rng.random((5, 9)) < 0.4).astype(int)
    matrix[:, matrix.sum(axis=0) == 0] = 1  # every item has a user
    matrix[matrix.sum(axis=1) == 0, 0] = 1
    data = _data(matrix.tolist())
    users = np.arange(5)
    items = EASE(lam=2.0, form="items").fit(data)
    dual = EASE(lam=2.0, form="users").fit(data)
    assert dual.dual and not items.dual
    assert dual.score(users) == pytest.approx(items.score(users), abs=1e-5)
    for a, b in zip(dual.similar_items("i0", 3), items.similar_items("i0", 3), strict=True):
        assert a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-5)


def test_mostpop_counts_distinct_users() -> None:
    log = InteractionLog.from_columns(["a", "a", "b", "c"], ["x", "x", "y", "y"], [1, 2, 3, 4])
    model = MostPop().fit(Interactions.from_log(log))
    assert model.score(np.array([0, 1])).tolist() == [[1.0, 2.0], [1.0, 2.0]]


MOVIES = {
    "i0": Movie("i0", "Toy Story", ["Animation", "Children"], 1995),
    "i1": Movie("i1", "Toy Story 2", ["Animation", "Children"], 1999),
    "i2": Movie("i2", "Heat", ["Crime"], 1995),
    "cold": Movie("cold", "Toy Story 3", ["Animation"], 2010),
}


def test_content_ranks_by_tfidf_cosine_and_answers_for_cold_items() -> None:
    model = Content(MOVIES).fit(_data([[1, 0, 0], [0, 1, 1]]))
    scores = model.score(np.array([0]))[0]  # the Toy Story fan
    assert scores[1] > scores[2]
    assert model.catalog == ("i0", "i1", "i2", "cold")
    # both share "toy", "story" and Animation; "2" is a rare word that dilutes i1's vector
    assert [item for item, _ in model.similar_items("cold", 2)] == ["i0", "i1"]
    # Heat shares only the 1990s with the Toy Story films, nothing with the 2010 one
    assert [item for item, _ in model.similar_items("i2", 3)] == ["i0", "i1"]


def test_content_artifact_brings_the_catalog_of_genres_and_titles() -> None:
    model = Content(MOVIES).fit(_data([[1, 0, 0], [0, 1, 1]]))
    served = served_model(model.to_bytes(), k=2)
    assert served.catalog is not None
    assert served.catalog.genres_of("cold") == {"Animation"}  # nobody has seen it
    assert served.catalog.genres_of("i2") == {"Crime"}
    assert served.catalog.titles["i1"] == "Toy Story 2"
    assert [item for item, _ in served.neighbours["cold"]] == ["i0", "i1"]
    assert served_model(ItemKNN(k=2).fit(_data(KNN)).to_bytes()).catalog is None


def test_als_is_deterministic_and_scores_histories() -> None:
    data = _data(KNN)
    first = ALS(factors=4, iterations=5, seed=3).fit(data)
    second = ALS(factors=4, iterations=5, seed=3).fit(data)
    assert np.array_equal(first.score(np.arange(3)), second.score(np.arange(3)))
    history = sp.csr_matrix(np.array([[1, 1, 0]], dtype=np.float32))
    assert first.score_history(history).shape == (1, 3)
    assert len(first.similar_items("i0", 2)) == 2


@pytest.mark.parametrize(
    "model",
    [MostPop(), ItemKNN(k=2), EASE(lam=1.0), ALS(factors=3, iterations=3), Content(MOVIES)],
    ids=lambda m: m.name,
)
def test_artifacts_round_trip_without_pickle(model) -> None:
    data = _data(KNN)
    model.fit(data)
    back = read_artifact(model.to_bytes())
    assert type(back) is type(model) and back.params == model.params
    assert back.items == data.items and back.users == data.users
    assert np.array_equal(back.score(np.arange(3)), model.score(np.arange(3)))
    if isinstance(model, ItemNeighbours) and not isinstance(model, MostPop):
        assert back.similar_items("i0", 2) == model.similar_items("i0", 2)


def test_a_wrong_artifact_is_refused_with_its_reason() -> None:
    blob = MostPop().fit(_data(KNN)).to_bytes()
    with pytest.raises(ArtifactError, match="holds model 'mostpop', not 'ease'"):
        EASE.from_bytes(blob)
    with pytest.raises(ArtifactError, match="not a model artifact"):
        read_artifact(b"not an npz")


def test_bad_parameters_name_themselves() -> None:
    with pytest.raises(ValueError, match="lam must be > 0"):
        EASE(lam=0)
    with pytest.raises(ValueError, match="k must be at least 1"):
        ItemKNN(k=0)
