"""Batch recommenders: MostPop, ItemKNN, EASE, ALS (``implicit``) and a TF-IDF content model."""

import io

import numpy as np

from models.algorithms.als import ALS
from models.algorithms.base import ArtifactError, Fitted, ItemNeighbours, Model
from models.algorithms.content import Content
from models.algorithms.ease import EASE
from models.algorithms.itemknn import ItemKNN
from models.algorithms.mostpop import MostPop

__all__ = [
    "ALS",
    "EASE",
    "MODELS",
    "ArtifactError",
    "Content",
    "Fitted",
    "ItemKNN",
    "ItemNeighbours",
    "Model",
    "MostPop",
    "read_artifact",
]

MODELS: dict[str, type[Fitted]] = {m.name: m for m in (MostPop, ItemKNN, EASE, ALS, Content)}


def read_artifact(data: bytes) -> Fitted:
    """The model in an artifact written by any model's ``to_bytes`` (dispatch on its name)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            name = str(archive["model"])
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"not a model artifact (npz with a 'model' entry): {exc}") from exc
    if name not in MODELS:
        raise ArtifactError(f"artifact holds unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name].from_bytes(data)
