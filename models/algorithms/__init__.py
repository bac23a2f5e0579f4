"""Batch recommenders: MostPop, ItemKNN, EASE, ALS (``implicit``) and a TF-IDF content model."""

from models.algorithms.als import ALS
from models.algorithms.base import ArtifactError, ItemNeighbours, Model
from models.algorithms.content import Content
from models.algorithms.ease import EASE
from models.algorithms.itemknn import ItemKNN
from models.algorithms.mostpop import MostPop

__all__ = [
    "ALS",
    "EASE",
    "ArtifactError",
    "Content",
    "ItemKNN",
    "ItemNeighbours",
    "Model",
    "MostPop",
]
