"""What the worker takes from a batch model: each item's nearest neighbours, computed once.

A request never touches the model: at load time every training item's ``NEIGHBOURS`` best
neighbours (``similar_items``) are tabulated, and the recommender reads the table for the
user's recent items (``models.recommender``, reason ``similar to <item>``).
"""

from __future__ import annotations

from models.algorithms import ItemNeighbours, read_artifact
from models.recommender import Neighbours

NEIGHBOURS = 20


def neighbour_table(artifact: bytes, k: int = NEIGHBOURS) -> Neighbours:
    """Every item's ``k`` best neighbours in the model of ``artifact`` (an npz of any model that
    has item neighbours); ``ValueError`` for a model without them (MostPop)."""
    model = read_artifact(artifact)
    if not isinstance(model, ItemNeighbours):
        raise ValueError(f"model {model.name!r} has no item neighbours to serve")
    # the content model also knows items nobody interacted with (its catalog): those matter most
    items = getattr(model, "catalog", model.items)
    return {item: model.similar_items(item, k) for item in items}
