"""A real Redis for local runs (tests, benchmarks): the configured one, a local one, or a
throwaway ``redis-server``.

    with local_redis_url() as url:
        ...

Order of preference: the URL in ``STREAMREC_TEST_REDIS_URL``; ``redis://127.0.0.1:6379/15`` if
it answers; otherwise ``redis-server`` started on a free loopback port (no persistence) and killed
on exit. Raises ``RedisUnavailable`` when none of these works, so fixtures can skip with the
reason. Runs share the first two, so each keeps to a key prefix of its own (``unique_prefix``)
and cleans up with ``delete_prefix``, never ``FLUSHDB``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from infra.local import free_port

ENV_VARIABLE = "STREAMREC_TEST_REDIS_URL"
LOCAL_URL = "redis://127.0.0.1:6379/15"
STARTUP_TIMEOUT_SECONDS = 10.0


class RedisUnavailable(RuntimeError):
    """No Redis is configured, none answers locally, and ``redis-server`` cannot be started."""


def answers(url: str) -> bool:
    """Whether a Redis at ``url`` answers PING."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def unique_prefix(name: str = "streamrec") -> str:
    """A key prefix no other test run uses."""
    return f"test-{uuid.uuid4().hex[:12]}:{name}"


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key starting with ``prefix``; returns how many were deleted."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


@contextmanager
def local_redis_url() -> Iterator[str]:
    """The URL of a Redis to run against, valid for the duration of the block."""
    configured = os.environ.get(ENV_VARIABLE)
    if configured:
        yield configured
        return
    if answers(LOCAL_URL):
        yield LOCAL_URL
        return
    with redis_server() as server:
        yield server.url


@dataclass
class RunningRedis:
    """A throwaway ``redis-server`` of this run."""

    url: str
    process: subprocess.Popen[bytes]

    def pause(self) -> None:
        """Stop it answering (SIGSTOP), as a hung or partitioned Redis: connections stay open,
        nothing comes back."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill it (as a crash would): clients see connections refused from now on."""
        self.process.kill()
        self.process.wait(timeout=STARTUP_TIMEOUT_SECONDS)


@contextmanager
def redis_server() -> Iterator[RunningRedis]:
    """A ``redis-server`` on a free loopback port, without persistence, killed on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable(
            f"set {ENV_VARIABLE}, run Redis on 127.0.0.1:6379, or install redis-server"
        )
    port = free_port()
    command = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/15"
    server = RunningRedis(url, process)
    try:
        _wait_until_answering(url, process)
        yield server
    finally:
        server.stop()


def _wait_until_answering(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not answers(url):
        if process.poll() is not None:
            raise RedisUnavailable(f"redis-server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RedisUnavailable(f"redis-server did not answer in {STARTUP_TIMEOUT_SECONDS}s")
        time.sleep(0.02)  # a poll interval, not a wait for something to happen
