"""Log lines for people (text) or for machines (one JSON object a line), with a correlation id.

The correlation id says which unit of work a line belongs to. It lives in a ``ContextVar``, so
each asyncio task (a shard's reader, an HTTP request) carries its own and lines logged anywhere
below it, in any package, get it without passing it down:

    worker     the request id (``X-Request-ID`` in, echoed out; made up when absent)
    consumers  ``<shard id>/<first sequence number of the batch>``

A JSON line::

    {"time": "2026-12-03T09:10:11.123Z", "level": "WARNING", "logger": "consumers.reader",
     "message": "shard shardId-000000000001: batch failed ...", "correlation_id":
     "shardId-000000000001/49650...", "exception": "Traceback ..."}

``correlation_id`` and ``exception`` appear only when there is one. Values passed with
``extra={...}`` are added as fields of their own (names of the record's attributes excepted).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"

correlation_id: ContextVar[str | None] = ContextVar("streamrec_correlation_id", default=None)

# the attributes every LogRecord has: anything else on a record came from ``extra``
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


@contextmanager
def correlated(value: str) -> Iterator[None]:
    """Lines logged inside the block (in this task, and tasks it starts) carry ``value``."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ms), level, logger, message, correlation id, and the
    exception's traceback and ``extra`` fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (non-JSON values of ``extra`` as their ``str``)."""
        line: dict[str, Any] = {
            "time": _utc_ms(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = getattr(record, "correlation_id", None) or correlation_id.get()
        if current:
            line["correlation_id"] = current
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line and key != "correlation_id":
                line[key] = value
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message``, then ``[correlation id]`` when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The usual line, with the correlation id appended."""
        text = super().format(record)
        current = correlation_id.get()
        if not current:
            return text
        first, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{first} [{current}]{newline}{rest}"


class _StderrHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs (told apart from other code's handlers). It
    writes to ``sys.stderr`` as it is at each line, so a replaced stderr (a test's capture
    that ended) is never written to after it was closed."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:  # type: ignore[override]
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # StreamHandler.__init__ sets it; stderr is looked up at each line instead


def configure_logging(log_format: str = "text", level: str = "WARNING") -> None:
    """Send every logger's lines to stderr in ``log_format`` (``text`` or ``json``) from
    ``level`` up (uvicorn's loggers propagate to the root). Calling it again replaces the
    handler it installed; handlers others added to the root logger are left alone."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def _utc_ms(created: float) -> str:
    stamp = datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
