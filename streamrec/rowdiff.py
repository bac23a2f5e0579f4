"""Feature rows of two tables compared item by item: what differs, with a few examples.

Two runs over the same events write the same features but not the same bookkeeping: versions
count writes and high-water marks hold sequence numbers, which differ from stream to stream. So
only the features are compared, and a user's recent items lose their positions (shard and
sequence number) too: a replay into the features applies the lake as one synthetic shard.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from feature_store.features import UserFeatures
from feature_store.rows import Features, decode

EXAMPLE_CHARS = 300


@dataclass(frozen=True)
class Mismatch:
    """One row that differs: its key and both sides (``None`` where a row is missing)."""

    key: str
    expected: Features | None
    actual: Features | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: only the fields that differ (and of a mapping, only the keys that do)."""
        if (
            self.expected is None
            or self.actual is None
            or type(self.expected) is not type(self.actual)
        ):
            return {"key": self.key, "expected": _cut(self.expected), "actual": _cut(self.actual)}
        differs = {}
        for name in (f.name for f in fields(self.expected)):
            old, new = getattr(self.expected, name), getattr(self.actual, name)
            if old != new:
                if isinstance(old, dict) and isinstance(new, dict):
                    changed = [k for k in old.keys() | new.keys() if old.get(k) != new.get(k)]
                    old = {k: old.get(k) for k in sorted(changed)}
                    new = {k: new.get(k) for k in sorted(changed)}
                differs[name] = {"expected": _cut(old), "actual": _cut(new)}
        return {"key": self.key, "fields": differs}


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing every row of two tables."""

    rows_compared: int
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when every row of either table is in the other with the same features."""
        return not self.mismatches


def comparable(features: Features) -> Features:
    """The features without what depends on the stream: recent items' positions."""
    if isinstance(features, UserFeatures):
        recent = tuple(r._replace(shard_id="", sequence_number="") for r in features.recent)
        return replace(features, recent=recent)
    return features


def features_by_key(items: Iterable[dict[str, Any]]) -> dict[str, Features]:
    """DynamoDB items (attribute-value maps) decoded to comparable features by row key."""
    rows = (decode(item) for item in items)
    return {row.key: comparable(row.features) for row in rows}


def compare(expected: Mapping[str, Features], actual: Mapping[str, Features]) -> Comparison:
    """Compare two tables' features row by row (both given by ``features_by_key``)."""
    keys = sorted(expected.keys() | actual.keys())
    mismatches = [
        Mismatch(key, expected.get(key), actual.get(key))
        for key in keys
        if expected.get(key) != actual.get(key)
    ]
    return Comparison(len(keys), mismatches)


def scan_items(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every item of ``table`` (a boto3 DynamoDB client; paginated, strongly consistent)."""
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = dynamodb.scan(**kwargs)
        yield from response["Items"]
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _cut(value: object) -> str | None:
    if value is None:
        return None
    text = repr(value)
    if len(text) <= EXAMPLE_CHARS:
        return text
    return text[: EXAMPLE_CHARS - 3] + "..."
