"""JSON and text log lines, and the correlation id carried by the context."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest
from pydantic import ValidationError

from infra.logs import JsonFormatter, TextFormatter, configure_logging, correlated, correlation_id
from infra.settings import Settings


def record(exc_info: object = None, extra: dict[str, object] | None = None) -> logging.LogRecord:
    return logging.getLogger("consumers.reader").makeRecord(
        "consumers.reader",
        logging.WARNING,
        __file__,
        1,
        "shard %s: %d records",
        ("s-1", 3),
        exc_info,  # type: ignore[arg-type]
        extra=extra,
    )


def test_a_json_line_has_time_level_logger_message() -> None:
    line = json.loads(JsonFormatter().format(record()))
    assert line["level"] == "WARNING" and line["logger"] == "consumers.reader"
    assert line["message"] == "shard s-1: 3 records"
    assert line["time"].endswith("Z") and len(line["time"]) == len("2026-12-03T09:10:11.123Z")
    assert "correlation_id" not in line and "exception" not in line


def test_the_correlation_id_of_the_context_is_in_the_line_and_reset_after() -> None:
    with correlated("shardId-1/42"):
        inside = json.loads(JsonFormatter().format(record()))
        text = TextFormatter().format(record())
    assert inside["correlation_id"] == "shardId-1/42"
    assert text == "WARNING consumers.reader: shard s-1: 3 records [shardId-1/42]"
    assert correlation_id.get() is None
    assert TextFormatter().format(record()) == "WARNING consumers.reader: shard s-1: 3 records"


async def test_each_task_keeps_its_own_correlation_id() -> None:
    seen: dict[str, str | None] = {}

    async def shard(name: str) -> None:
        with correlated(f"{name}/1"):
            await asyncio.sleep(0)  # let the other task run in between
            seen[name] = correlation_id.get()

    await asyncio.gather(shard("a"), shard("b"))
    assert seen == {"a": "a/1", "b": "b/1"}


def test_exceptions_and_extra_fields_are_fields_of_the_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc = record(sys.exc_info(), extra={"shard": "s-9", "batch": 7})
    line = json.loads(JsonFormatter().format(exc))
    assert "RuntimeError: boom" in line["exception"]
    assert (line["shard"], line["batch"]) == ("s-9", 7)


def test_configure_logging_writes_json_lines_from_the_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("text")
        configure_logging("json", "INFO")  # replaces its own handler, keeps pytest's
        ours = [h for h in root.handlers if type(h).__name__ == "_StderrHandler"]
        assert len(ours) == 1
        assert [h for h in root.handlers if h not in ours] == [
            h for h in handlers if type(h).__name__ != "_StderrHandler"
        ]
        logging.getLogger("x").debug("hidden")
        with correlated("req-7"):
            logging.getLogger("x").info("shown")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["message"], line["correlation_id"]) for line in lines] == [("shown", "req-7")]


def test_a_bad_log_format_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("yaml")
    monkeypatch.setenv("STREAMREC_LOG_FORMAT", "yaml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()
