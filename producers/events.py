"""The event: the wire contract between client applications and everything downstream.

One event per Kinesis record, compact JSON (Firehose and Athena read JSON), partition key
``user_id``. Validation is strict: wrong types are not coerced, unknown fields are refused, and
every rejection names the offending field.

Errors::

    InvalidEvent(ValueError)   .field names what is wrong, .reason says why
"""

from __future__ import annotations

import json
import math
import time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = 1
# An event is small: Kinesis would take 1 MiB, but the lake and the feature rows would suffer.
MAX_EVENT_BYTES = 8 * 1024
MAX_CONTEXT_KEYS = 16
MAX_CONTEXT_VALUE_CHARS = 256
# Event time must be UTC milliseconds: anything before 1990 is almost surely seconds.
MIN_TIMESTAMP_MS = 631_152_000_000  # 1990-01-01T00:00:00Z
MAX_CLOCK_SKEW_MS = 24 * 3600 * 1000

MAX_ID_CHARS = 128
ID_PATTERN = r"^[A-Za-z0-9_.:@\-]+$"  # ids travel in URLs, Redis keys and DynamoDB keys
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]
ContextValue = str | int | float | bool


class EventType(StrEnum):
    """What the user did. Values are the strings on the wire."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    RATING = "rating"
    LIKE = "like"
    DISLIKE = "dislike"
    SKIP = "skip"
    SHARE = "share"


class InvalidEvent(ValueError):
    """An event that breaks the contract. ``field`` is the dotted path of the first bad field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid event: {field}: {reason}")
        self.field = field
        self.reason = reason


class Event(BaseModel):
    """One interaction. Immutable; build with ``Event(...)`` or ``Event.from_json(...)``."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    event_id: Id
    user_id: Id
    item_id: Id
    event_type: EventType
    timestamp: int = Field(description="Event time, UTC milliseconds since the epoch.")
    value: float | None = Field(None, description="Rating, dwell seconds, price, ...")
    session_id: Id | None = None
    context: dict[Annotated[str, Field(min_length=1, max_length=64)], ContextValue] | None = None
    schema_version: int = SCHEMA_VERSION

    @field_validator("event_type", mode="before")
    @classmethod
    def _event_type(cls, value: Any) -> Any:
        # strict mode would refuse the plain string that JSON carries; accept exactly the values
        if isinstance(value, str) and not isinstance(value, EventType):
            try:
                return EventType(value)
            except ValueError:
                allowed = ", ".join(t.value for t in EventType)
                raise ValueError(f"unknown event type {value!r} (allowed: {allowed})") from None
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        if isinstance(value, int):
            value = float(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: int) -> int:
        if value < MIN_TIMESTAMP_MS:
            raise ValueError(
                f"{value} is before 1990 in milliseconds; event time is UTC milliseconds, "
                "not seconds"
            )
        latest = int(time.time() * 1000) + MAX_CLOCK_SKEW_MS
        if value > latest:
            raise ValueError(f"{value} is more than a day in the future")
        return value

    @field_validator("context")
    @classmethod
    def _context(cls, value: dict[str, ContextValue] | None) -> dict[str, ContextValue] | None:
        if value is None:
            return None
        if len(value) > MAX_CONTEXT_KEYS:
            raise ValueError(f"has {len(value)} keys, at most {MAX_CONTEXT_KEYS} allowed")
        for key, item in value.items():
            if isinstance(item, str) and len(item) > MAX_CONTEXT_VALUE_CHARS:
                raise ValueError(f"value of {key!r} is longer than {MAX_CONTEXT_VALUE_CHARS}")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"value of {key!r} must be a finite number")
        return value

    @field_validator("schema_version")
    @classmethod
    def _schema_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"version {value} is not supported (this SDK speaks {SCHEMA_VERSION})")
        return value

    @property
    def partition_key(self) -> str:
        """The Kinesis partition key: all of a user's events go to one shard, in order."""
        return self.user_id

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, the bytes of one Kinesis record, fields in model order. Unset
        optionals are omitted; text is UTF-8 (not ``\\u`` escapes).

        Straight from pydantic-core's serializer (what ``model_dump_json`` calls, without its
        ``str`` round trip): 0.75 µs an event, against 4.7 µs for ``model_dump`` followed by
        ``json.dumps``, which went through a Python dict and the stdlib encoder.
        """
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        """Decode and validate one record. Raises ``InvalidEvent`` naming the bad field."""
        size = len(data.encode() if isinstance(data, str) else data)
        if size > MAX_EVENT_BYTES:
            raise InvalidEvent("<record>", f"{size} bytes, at most {MAX_EVENT_BYTES} allowed")
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent("<record>", f"not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise InvalidEvent("<record>", f"expected a JSON object, got {type(raw).__name__}")
        return cls.parse(raw)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Event:
        """Validate a mapping (decoded JSON). Raises ``InvalidEvent`` naming the bad field."""
        try:
            event = cls.model_validate(raw)
        except ValidationError as exc:
            raise _invalid(exc) from None
        size = len(event.to_json())
        if size > MAX_EVENT_BYTES:
            raise InvalidEvent("<event>", f"{size} bytes as JSON, at most {MAX_EVENT_BYTES}")
        return event


def _invalid(exc: ValidationError) -> InvalidEvent:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "<event>"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "extra_forbidden":
        message = "is not a field of the event"
    return InvalidEvent(field, message)
