"""The worker's request ids: kept from X-Request-ID when valid, made up otherwise, echoed in the
answer, and the correlation id of every line logged while the request is handled."""

from __future__ import annotations

import json
import logging

import httpx
from fastapi import FastAPI

from infra.logs import JsonFormatter
from models.request_ids import RequestIdMiddleware, request_id


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def app_logging_each_request() -> FastAPI:
    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, str]:
        logging.getLogger("models.test").warning("working")
        return {"ok": "yes"}

    app.add_middleware(RequestIdMiddleware)
    return app


async def test_the_id_is_echoed_and_carried_by_the_requests_log_lines() -> None:
    lines = Lines()
    logger = logging.getLogger("models.test")
    logger.addHandler(lines)
    transport = httpx.ASGITransport(app=app_logging_each_request())
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            given = await http.get("/work", headers={"X-Request-ID": "abc-123"})
            made = await http.get("/work")
            bad = await http.get("/work", headers={"X-Request-ID": "two words\tand a tab"})
    finally:
        logger.removeHandler(lines)
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert bad.headers["x-request-id"] not in ("two words\tand a tab", made.headers["x-request-id"])
    assert [line["correlation_id"] for line in lines.lines] == [
        "abc-123",
        made.headers["x-request-id"],
        bad.headers["x-request-id"],
    ]


def test_only_id_like_headers_are_kept() -> None:
    assert request_id([(b"X-Request-ID", b"Root=1-67891233-abcdef012345678912345678")]) == (
        "Root=1-67891233-abcdef012345678912345678"
    )
    for value in (b"", b"x" * 129, b"new\nline", b'{"json": 1}'):
        made = request_id([(b"x-request-id", value)])
        assert made != value.decode() and len(made) == 32
    assert request_id([]) != request_id([])
