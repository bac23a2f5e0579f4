"""The embedded local stack: moto's server started in this process on 127.0.0.1 and a free port.

``python -m infra.local --port P`` runs the same server in the foreground until it is killed: a
stack that outlives the processes using it (``streamrec chaos`` kills its consumer with SIGKILL).
``moto_process()`` starts it so, for a benchmark whose parts must not share one GIL.

moto's own ``ThreadedMotoServer`` finds the service of every request by listing moto's package
directory on disk (``list_of_moto_modules``), which took 40% of the demo's CPU. The server here is
moto's dispatcher with that lookup memoised per host (the host of a request names the same service
every time), served by cheroot instead of werkzeug's development server, which closes every
connection: each AWS call then cost a TCP connection and a new server thread. cheroot keeps
connections alive (HTTP/1.1) and serves them from a pool of threads; a BatchGetItem costs the
caller a third less CPU and moto a quarter less (docs/decisions/0023).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cheroot.wsgi import Server as WSGIServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

# moto accepts any credentials; set dummy ones only where none are configured so that botocore
# never goes looking for an instance profile (a network call that hangs off AWS).
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# requests served at once (moto runs them one at a time anyway); idle kept-alive connections wait
# in cheroot's selector, not in a thread
SERVER_THREADS = 16
# an idle connection is closed by the client first: aiobotocore drops its idle connections after
# 12 s, aiohttp after 15 s. A server closing first (cheroot's default: 10 s) races a client
# reusing the connection, whose call then fails and is retried after a backoff
IDLE_CONNECTION_SECONDS = 60
IDLE_CONNECTIONS = 256  # kept alive at most (cheroot's default, 10, is fewer than one pool)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _MemoisedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves each host, one request at a time.

    moto checks a DynamoDB condition and writes the item in separate steps, without a lock, so
    two threads could both pass the same ``ConditionExpression`` (measured: 400 conditional
    increments succeeded, the counter read 399). DynamoDB makes each write atomic; serialising
    the requests does the same here, at little cost (moto is bound by the GIL anyway).
    """

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backends: dict[str | None, Any] = {}
        self._one_at_a_time = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        with self._one_at_a_time:
            return super().__call__(environ, start_response)

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


def _server(port: int | None) -> WSGIServer:
    """moto's server bound to 127.0.0.1 (``port`` or a free one), not serving yet."""
    for name, value in _DUMMY_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    address = ("127.0.0.1", port or 0)
    server = WSGIServer(
        address, _MemoisedDispatcher(), numthreads=SERVER_THREADS, timeout=IDLE_CONNECTION_SECONDS
    )
    server.keep_alive_conn_limit = IDLE_CONNECTIONS
    server.prepare()  # binds: bind_addr is the address bound
    return server


@contextmanager
def embedded_stack(port: int | None = None) -> Iterator[str]:
    """Run moto on 127.0.0.1 for the duration of the block; yields its endpoint URL."""
    server = _server(port)
    thread = threading.Thread(target=server.serve, name="moto", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.bind_addr[1]}"
    finally:
        server.stop()
        thread.join(timeout=10)


@dataclass(frozen=True)
class RunningMoto:
    """moto serving in a process of its own."""

    url: str
    process: subprocess.Popen[bytes]


START_TIMEOUT_SECONDS = 30.0


@contextmanager
def moto_process() -> Iterator[RunningMoto]:
    """moto in a process of its own (``python -m infra.local``) on a free loopback port, until
    the block ends (``stop_process``). Its log goes to a temporary file, whose end is in the
    error when it does not start."""
    port = free_port()
    root = str(Path(__file__).resolve().parents[1])
    env = {**_DUMMY_CREDENTIALS, **os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "infra.local", "--port", str(port)]
    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=log_file)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/moto-api/", process, "moto", log_file=log_file)
            yield RunningMoto(url, process)
        finally:
            stop_process(process)


def wait_http(
    url: str,
    process: subprocess.Popen[Any],
    what: str,
    timeout: float = START_TIMEOUT_SECONDS,
    log_file: Any = None,
) -> None:
    """Poll ``url`` until it answers; raises ``RuntimeError`` (with the end of ``log_file``, the
    process's output, when given) if ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            tail = ""
            if log_file is not None:
                log_file.seek(0)
                tail = ": " + log_file.read().decode(errors="replace")[-2000:]
            state = "exited" if process.poll() is not None else f"no answer in {timeout} s"
            raise RuntimeError(f"{what} did not start on {url} ({state}){tail}")
        time.sleep(0.05)  # polling a starting process, under the deadline


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_forever(port: int) -> None:
    """Run moto on 127.0.0.1:``port`` in the foreground until the process is stopped."""
    _server(port).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m infra.local", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    serve_forever(parser.parse_args().port)
