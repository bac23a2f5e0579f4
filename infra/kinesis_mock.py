"""kinesis-mock (npm ``kinesis-local``): the faithful local Kinesis, for resharding and the KCL.

moto's Kinesis keeps writing to a closed parent after a split and gives no ``ChildShards``;
kinesis-mock reshards like AWS, returns real 56-digit sequence numbers and speaks HTTP/2 to the
Java KCL (../shared/LOCAL_AWS.md). It is one JavaScript file run by Node. ``make`` installs it
under ``<venv>/node``; ``STREAMREC_KINESIS_MOCK_JS`` names another ``main.js``.

It listens on every interface and has no option to bind one: only ever connect to 127.0.0.1.
It ignores SIGTERM, so it is stopped with SIGKILL, by its own pid.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from infra.local import free_port

MAIN_JS_VARIABLE = "STREAMREC_KINESIS_MOCK_JS"
START_DEADLINE = 30.0  # seconds; it starts in about one
# Stream operations leave a stream UPDATING for this long (kinesis-mock's default is 500 ms).
OPERATION_DURATION = "100ms"


class KinesisMockUnavailable(RuntimeError):
    """kinesis-mock or Node is not installed here (run ``make``), or it did not start."""


def main_js() -> Path:
    """The kinesis-mock script: ``$STREAMREC_KINESIS_MOCK_JS`` or the one ``make`` installed."""
    named = os.environ.get(MAIN_JS_VARIABLE)
    path = (
        Path(named)
        if named
        else Path(sys.prefix, "node", "node_modules", "kinesis-local", "main.js")
    )
    if not path.is_file():
        raise KinesisMockUnavailable(
            f"kinesis-mock not found at {path}: run `make` (npm install kinesis-local) "
            f"or set {MAIN_JS_VARIABLE}"
        )
    return path


def node() -> str:
    """The ``node`` executable."""
    found = shutil.which("node")
    if found is None:
        raise KinesisMockUnavailable("kinesis-mock needs Node.js (node) on the PATH")
    return found


def available() -> str | None:
    """None when kinesis-mock can run here, else why not (for a test's skip reason)."""
    try:
        main_js()
        node()
    except KinesisMockUnavailable as exc:
        return str(exc)
    return None


@contextmanager
def kinesis_mock(port: int | None = None) -> Iterator[str]:
    """Run kinesis-mock for the duration of the block; yields its plain-HTTP endpoint URL."""
    script = main_js()
    port = port or free_port()
    durations = ("CREATE_STREAM", "DELETE_STREAM", "MERGE_SHARDS", "SPLIT_SHARD")
    env = {
        **os.environ,
        "KINESIS_MOCK_CERT_PATH": str(script.parent / "server.json"),
        "KINESIS_MOCK_PLAIN_PORT": str(port),
        "KINESIS_MOCK_TLS_PORT": str(free_port()),
        "SHOULD_PERSIST_DATA": "false",
        **{f"{name}_DURATION": OPERATION_DURATION for name in (*durations, "UPDATE_SHARD_COUNT")},
    }
    process = subprocess.Popen(
        [node(), str(script)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.kill()  # it ignores SIGTERM
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace")[-2000:] if process.stderr else ""
            raise KinesisMockUnavailable(f"kinesis-mock exited with {process.returncode}: {err}")
        try:
            with urllib.request.urlopen(f"{url}/healthcheck", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)  # polling a starting process, under a deadline
    raise KinesisMockUnavailable(f"kinesis-mock did not answer on {url} in {START_DEADLINE}s")


def serve_forever(port: int) -> None:
    """Run kinesis-mock on ``port`` (plain HTTP) in the foreground until interrupted."""
    with kinesis_mock(port) as url:
        print(f"kinesis-mock on {url} (Ctrl-C stops it)", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m infra.kinesis_mock", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="plain-HTTP port")
    serve_forever(parser.parse_args().port)
