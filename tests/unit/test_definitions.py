"""Feature definitions: unique, documented, and listed in the README exactly as generated."""

from __future__ import annotations

from pathlib import Path

from feature_store.definitions import ENTITIES, FEATURES, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_feature_is_named_by_its_entity_and_described() -> None:
    for feature in FEATURES:
        assert feature.entity in ENTITIES
        assert feature.name.startswith(f"{feature.entity}.")
        assert feature.description


def test_the_readme_lists_every_feature_as_generated() -> None:
    text = README.read_text()
    begin, end = "<!-- features:begin -->\n", "\n<!-- features:end -->"
    listed = text[text.index(begin) + len(begin) : text.index(end)]
    assert listed == markdown_table(), "regenerate with feature_store.definitions.markdown_table()"
