"""``streamrec serve --workers 2``: two processes answer on one port; SIGTERM stops them all, and
a worker that dies takes the command down with it (for the service manager to restart)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import httpx
import psutil

from infra.local import free_port
from infra.settings import Settings
from tests.e2e.test_consume_sigterm import environment
from tests.polling import eventually

STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0


def start(settings: Settings, port: int) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "streamrec.cli",
        "--port",
        str(port),
        "serve",
        "--workers",
        "2",
    ]
    return subprocess.Popen(command, env=environment(settings), stderr=subprocess.PIPE, text=True)


def workers_of(process: subprocess.Popen[str]) -> list[psutil.Process]:
    """The worker processes the command spawned (not multiprocessing's resource tracker)."""
    children = psutil.Process(process.pid).children()
    return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]


async def serving(process: subprocess.Popen[str], url: str) -> bool:
    assert process.poll() is None, process.stderr.read() if process.stderr else "exited"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=1.0) as http:
            return (await http.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_two_workers_share_the_port_and_stop_on_sigterm(applied: Settings) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(applied, port)
    try:
        await eventually(lambda: serving(process, url), STARTUP_SECONDS, "serving", interval=0.2)
        workers = workers_of(process)
        assert len(workers) == 2
        answered = 0
        for _ in range(20):  # a connection each: the kernel spreads them over both workers
            async with httpx.AsyncClient(base_url=url) as http:
                response = await http.get("/recommendations/nobody", params={"k": 3})
                assert response.status_code == 200
                answered += 1
        assert answered == 20
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=STOP_SECONDS)
        assert process.returncode == 0, stderr[-2000:]
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_a_worker_that_dies_stops_the_command(applied: Settings) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(applied, port)
    try:
        await eventually(lambda: serving(process, url), STARTUP_SECONDS, "serving", interval=0.2)
        victim, survivor = workers_of(process)
        victim.kill()
        _, stderr = await asyncio.to_thread(process.communicate, timeout=STOP_SECONDS)
        assert process.returncode != 0
        assert "exited with" in stderr
        assert not survivor.is_running() or survivor.status() == psutil.STATUS_ZOMBIE
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
