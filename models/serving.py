"""What the worker takes from a batch model: each item's nearest neighbours, computed once.

A request never touches the model: at load time every training item's ``NEIGHBOURS`` best
neighbours (``similar_items``) are tabulated, and the recommender reads the table for the
user's recent items (``models.recommender``, reason ``similar to <item>``). The content model
also brings the item catalog (genres and titles of every item it knows, cold ones included), which
the genre filters and genre candidates read (``served_model``).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.algorithms import Content, ItemNeighbours, read_artifact
from models.catalog import ItemCatalog
from models.recommender import Neighbours

NEIGHBOURS = 20


@dataclass(frozen=True)
class ServedModel:
    """What the worker serves of one model version: its neighbour table and, for the content
    model, the item catalog it was trained with (``None`` from other models)."""

    neighbours: Neighbours
    catalog: ItemCatalog | None = None


def served_model(artifact: bytes, k: int = NEIGHBOURS) -> ServedModel:
    """Every item's ``k`` best neighbours in the model of ``artifact`` (an npz of any model that
    has item neighbours), with the content model's catalog; ``ValueError`` for a model without
    neighbours (MostPop)."""
    model = read_artifact(artifact)
    if not isinstance(model, ItemNeighbours):
        raise ValueError(f"model {model.name!r} has no item neighbours to serve")
    if not isinstance(model, Content):
        return ServedModel({item: model.similar_items(item, k) for item in model.items})
    # the content model also knows items nobody interacted with (its catalog): those matter most
    table = {item: model.similar_items(item, k) for item in model.catalog}
    return ServedModel(table, content_catalog(model))


def content_catalog(model: Content) -> ItemCatalog:
    """The genres and titles of the content model's catalog items (those it has any of)."""
    genres = {i: frozenset(g) for i, g in zip(model.catalog, model.item_genres, strict=True) if g}
    titles = {i: t for i, t in zip(model.catalog, model.item_titles, strict=True) if t}
    return ItemCatalog(genres, titles)
