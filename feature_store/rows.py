"""Rows of the features table: the feature dataclasses to and from DynamoDB attribute maps.

Scalars are typed attributes; the collections (recent items, seen items, co-visitation, the
popularity list) are each one compact JSON string attribute. Rows are read and rewritten whole,
so nothing is lost by packing, and a packed attribute costs a fraction of a typed map or list to
(de)serialise: moto served BatchGetItem of 100 rows with a 100-entry map at 1.5 calls/s and with
the same map packed at 24 calls/s (docs/decisions/0002).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from feature_store.features import (
    ITEM_TTL_MS,
    POPULAR_KEY,
    USER_TTL_MS,
    ItemFeatures,
    Popular,
    RecentItem,
    Session,
    TrendCandidate,
    UserFeatures,
)
from feature_store.positions import BEFORE_ALL, Position
from infra.resources import FEATURES_TTL_ATTRIBUTE

Features = UserFeatures | ItemFeatures | Popular
MARK_PREFIX = "hwm:"
EXPIRES_AT = FEATURES_TTL_ATTRIBUTE  # epoch SECONDS, as DynamoDB TTL wants

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class Row:
    """One stored row: its features, its version and its per-shard high-water marks.

    ``marks[shard_id]`` is the position (as text: the sequence number string, with
    ``:<sub-sequence>`` for a user record of an aggregated record) of the newest record of that
    shard already applied to the row. ``version`` is 0 for a row that is not stored yet.
    """

    key: str
    features: Features
    version: int = 0
    marks: dict[str, str] = field(default_factory=dict)

    def mark(self, shard_id: str) -> Position:
        """The shard's high-water mark; ``BEFORE_ALL`` when nothing of it was applied."""
        return Position.parse(self.marks[shard_id]) if shard_id in self.marks else BEFORE_ALL


def encode(row: Row) -> dict[str, Any]:
    """The DynamoDB item (attribute-value map) of ``row``."""
    plain: dict[str, Any] = {"pk": row.key, "version": row.version, **_plain(row.features)}
    plain.update({MARK_PREFIX + shard: seq for shard, seq in row.marks.items()})
    expires = expires_at_ms(row.features)
    if expires is not None:
        plain[EXPIRES_AT] = expires // 1000
    return {name: _serializer.serialize(value) for name, value in plain.items()}


def decode(item: dict[str, Any]) -> Row:
    """The row a DynamoDB item holds."""
    plain = {name: _numbers(_deserializer.deserialize(value)) for name, value in item.items()}
    marks = {k[len(MARK_PREFIX) :]: v for k, v in plain.items() if k.startswith(MARK_PREFIX)}
    return Row(plain["pk"], _features(plain), int(plain.get("version", 0)), marks)


def expires_at_ms(features: Features) -> int | None:
    """When DynamoDB may delete the row (epoch ms): its newest event plus the row's TTL.

    DynamoDB deletes expired rows lazily (up to days later), so readers check it too
    (``feature_store.definitions``); the global row never expires.
    """
    if isinstance(features, UserFeatures) and features.last_seen:
        return features.last_seen + USER_TTL_MS
    if isinstance(features, ItemFeatures) and features.last_seen:
        return features.last_seen + ITEM_TTL_MS
    return None


def _plain(features: Features) -> dict[str, Any]:
    if isinstance(features, UserFeatures):
        session = features.session
        return {
            "kind": "user",
            "user_id": features.user_id,
            "recent": _pack(features.recent),
            "seen": _pack(features.seen),
            "events": features.events,
            "last_seen": features.last_seen,
            "counts": _pack(features.counts),
            "tiles": _pack({k: _tiles(t) for k, t in features.tiles.items()}),
            "genres": _pack({g: _buckets(b) for g, b in features.genres.items()}),
            "session": _pack(session),
        }
    if isinstance(features, ItemFeatures):
        return {
            "kind": "item",
            "item_id": features.item_id,
            "counts": features.counts,
            "total": features.total,
            "covis": _pack(features.covis),
            "tiles": _pack(_tiles(features.tiles)),
            "last_seen": features.last_seen,
        }
    trending = [[c.item_id, _buckets(c.recent), c.week, c.last_seen] for c in features.trending]
    return {"kind": "popular", "items": _pack(features.items), "trending": _pack(trending)}


def _buckets(buckets: dict[int, int]) -> list[list[int]]:
    return sorted([i, n] for i, n in buckets.items())


def _tiles(tiles: dict[str, dict[int, int]]) -> dict[str, list[list[int]]]:
    return {name: _buckets(b) for name, b in tiles.items()}


def _unbuckets(pairs: list[list[int]]) -> dict[int, int]:
    return {int(i): int(n) for i, n in pairs}


def _untiles(packed: dict[str, list[list[int]]]) -> dict[str, dict[int, int]]:
    return {name: _unbuckets(pairs) for name, pairs in packed.items()}


def _features(plain: dict[str, Any]) -> Features:
    kind = plain.get("kind")
    if kind == "user":
        session = _unpack(plain.get("session"), None)
        return UserFeatures(
            user_id=plain["user_id"],
            recent=tuple(RecentItem(*r) for r in _unpack(plain.get("recent"), [])),
            seen=tuple(_unpack(plain.get("seen"), [])),
            events=plain.get("events", 0),
            last_seen=plain.get("last_seen", 0),
            counts=_unpack(plain.get("counts"), {}),
            tiles={k: _untiles(t) for k, t in _unpack(plain.get("tiles"), {}).items()},
            genres={g: _unbuckets(b) for g, b in _unpack(plain.get("genres"), {}).items()},
            session=None if session is None else Session(*session[:4], tuple(session[4])),
        )
    if kind == "item":
        return ItemFeatures(
            item_id=plain["item_id"],
            counts=plain.get("counts", {}),
            total=plain.get("total", 0),
            covis=_unpack(plain.get("covis"), {}),
            tiles=_untiles(_unpack(plain.get("tiles"), {})),
            last_seen=plain.get("last_seen", 0),
        )
    if kind == "popular" or plain["pk"] == POPULAR_KEY:
        return Popular(
            items=tuple((i, n) for i, n in _unpack(plain.get("items"), [])),
            trending=tuple(
                TrendCandidate(i, _unbuckets(b), w, t)
                for i, b, w, t in _unpack(plain.get("trending"), [])
            ),
        )
    raise ValueError(f"row {plain.get('pk')!r} has unknown kind {kind!r}")


def _pack(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _unpack(value: str | None, empty: Any) -> Any:
    return json.loads(value) if value else empty


def _numbers(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; every number we store is an integer."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value
