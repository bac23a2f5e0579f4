"""What every runtime's wiring builds the same way (streamrec/parts.py)."""

from __future__ import annotations

from consumers.features import FeatureProcessor
from consumers.lander import ParquetLander
from feature_store.memory import InMemoryOnlineStore
from infra.settings import Settings
from streamrec.parts import driven


def test_the_lander_is_driven_unless_firehose_writes_the_lake() -> None:
    features = FeatureProcessor(InMemoryOnlineStore())
    lander = ParquetLander(None)  # type: ignore[arg-type]  # never used: only placed
    assert driven(Settings(), features, lander) == [features, lander]
    assert driven(Settings(lander=False), features, lander) == [features]
