"""A closed-loop HTTP load client for bench/serving.py, run in a process of its own.

    python bench/http_load.py < spec.json > result.json

The spec is ``{"base_url", "paths", "concurrency", "client": "aiohttp"|"httpx", "warmup_path"}``:
``concurrency`` connections each request the next path of ``paths`` as soon as their previous
answer is read, until every path was requested once. Each connection first requests
``warmup_path`` once (connection set-up is not measured). The result is
``{"latencies_ms", "wall_s", "statuses", "cached", "degraded"}``: one latency per path (send to
last body byte), the wall time of the timed part, answers by status, and per path whether the
body said ``"cached":true`` / ``"degraded":true``.

It runs apart from the server so that the client's CPU is not spent on the server's event loop
(the machine has 2 cores: server and client each get one while moto is idle).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

Fetch = Callable[[str], Awaitable[tuple[int, bytes]]]


async def _drive(fetch: Fetch, spec: dict[str, Any]) -> dict[str, Any]:
    paths: list[str] = spec["paths"]
    concurrency: int = spec["concurrency"]
    latencies = [0.0] * len(paths)
    statuses: Counter[int] = Counter()
    cached = [False] * len(paths)
    degraded = [False] * len(paths)
    next_index = 0

    async def connection() -> None:
        nonlocal next_index
        while next_index < len(paths):
            index = next_index
            next_index += 1
            started = time.perf_counter()
            status, body = await fetch(paths[index])
            latencies[index] = (time.perf_counter() - started) * 1000
            statuses[status] += 1
            cached[index] = b'"cached":true' in body
            degraded[index] = b'"degraded":true' in body

    warmup = spec.get("warmup_path")
    if warmup:
        await asyncio.gather(*(fetch(warmup) for _ in range(concurrency)))
    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "latencies_ms": latencies,
        "wall_s": wall,
        "statuses": {str(s): n for s, n in statuses.items()},
        "cached": cached,
        "degraded": degraded,
    }


async def _with_aiohttp(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=spec["concurrency"])
    async with aiohttp.ClientSession(spec["base_url"], connector=connector) as session:

        async def fetch(path: str) -> tuple[int, bytes]:
            async with session.get(path) as response:
                return response.status, await response.read()

        return await _drive(fetch, spec)


async def _with_httpx(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=spec["concurrency"])
    async with httpx.AsyncClient(base_url=spec["base_url"], limits=limits) as client:

        async def fetch(path: str) -> tuple[int, bytes]:
            response = await client.get(path)
            return response.status_code, response.content

        return await _drive(fetch, spec)


CLIENTS = {"aiohttp": _with_aiohttp, "httpx": _with_httpx}


def main() -> None:
    spec = json.load(sys.stdin)
    if spec.get("client") not in CLIENTS:
        raise SystemExit(f"client must be one of {sorted(CLIENTS)}, got {spec.get('client')!r}")
    result = asyncio.run(CLIENTS[spec["client"]](spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
