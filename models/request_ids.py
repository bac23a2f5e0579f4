"""Request ids for the worker: every request gets one, logs carry it, the answer echoes it.

``X-Request-ID`` from the client (or a proxy) is kept when it looks like an id (1 to 128 of
``[A-Za-z0-9._:@/+=-]``); otherwise, or without one, a new id is made (32 hex digits), so a
header can never smuggle text into the logs. The id is the correlation id of every line logged
while the request is handled (``infra.logs``), uvicorn's access line included, and comes back
in the answer's ``X-Request-ID`` header.
"""

from __future__ import annotations

import os
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.logs import correlated

HEADER = "x-request-id"
_VALID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's id: its valid ``X-Request-ID``, else a new one."""
    for name, value in headers:
        if name.lower() == HEADER.encode():
            text = value.decode("latin-1")
            if _VALID.fullmatch(text):
                return text
            break
    return os.urandom(16).hex()  # as random as uuid4().hex, a fifth of its cost (0.3 us)


class RequestIdMiddleware:
    """ASGI middleware: sets the correlation id for the request, adds the header to the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection scope; only HTTP requests get an id."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        rid = request_id(scope.get("headers", []))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.append((HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with correlated(rid):
            await self._app(scope, receive, send_with_id)
