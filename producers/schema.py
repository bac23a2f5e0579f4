"""The event model as table columns: the one schema of the offline lake (Parquet and Glue).

Columns are derived from ``Event``'s fields, so adding a field to the event adds a column. The
``context`` map holds values of mixed types; it is stored as a JSON string so a row reads back to
exactly the event that was sent (see docs/decisions/0003-context-as-json-column.md).
"""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from typing import Any

from producers.events import Event

# Glue/Hive type for each Python type found in the event model.
_GLUE_TYPES: dict[type, str] = {str: "string", int: "bigint", float: "double", dict: "string"}


def _base_type(annotation: Any) -> type:
    """The one concrete type of a field: ``X | None`` is ``X``, ``Annotated[str, ...]`` is str."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"cannot map union {annotation} to one column type")
        return _base_type(members[0])
    if origin is not None:
        return origin
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return str
    return annotation


def event_columns() -> list[tuple[str, str]]:
    """``(name, glue_type)`` of every event field, in model order."""
    return [
        (name, _GLUE_TYPES[_base_type(field.annotation)])
        for name, field in Event.model_fields.items()
    ]


def to_row(event: Event) -> dict[str, Any]:
    """The event as one lake row (every column present, ``None`` where unset)."""
    row = event.model_dump(mode="json")
    if row["context"] is not None:
        row["context"] = json.dumps(row["context"], separators=(",", ":"), sort_keys=True)
    return row


def from_row(row: dict[str, Any]) -> Event:
    """The event a lake row holds; the inverse of ``to_row``. Extra columns are ignored."""
    raw = {name: row.get(name) for name, _ in event_columns() if row.get(name) is not None}
    if "context" in raw:
        raw["context"] = json.loads(raw["context"])
    return Event.parse(raw)
