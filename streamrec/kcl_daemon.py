"""``streamrec consume --runtime kcl``: the Java MultiLangDaemon in the foreground.

The properties and logging configuration go into a temporary directory, the daemon runs as a
child in this process group (so killing the group stops it and its shard processes), and
SIGTERM or SIGINT is passed on to it as SIGTERM: the daemon then asks each shard processor to
flush and checkpoint (``shutdown_requested``) before it exits. The exit status is the daemon's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from infra.kcl import KclUnavailable, write_config
from infra.settings import Settings

CHILD_MODULE = "streamrec.kcl_entry"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def child_command() -> str:
    """The daemon's ``executableName``: this Python running the child entry point."""
    return f"{sys.executable} -m {CHILD_MODULE}"


def default_worker_id() -> str:
    """Unique per daemon on a host and across hosts: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def run_daemon(settings: Settings, worker_id: str | None = None) -> int:
    """Run the daemon until it exits (or is stopped by a signal); its exit status."""
    worker = worker_id or settings.kcl_worker_id or default_worker_id()
    with tempfile.TemporaryDirectory(prefix="streamrec-kcl-") as directory:
        try:
            config = write_config(
                settings,
                Path(directory),
                executable=child_command(),
                worker_id=worker,
                base_environment=os.environ,
            )
        except KclUnavailable as exc:
            print(f"streamrec consume --runtime kcl: {exc}", file=sys.stderr)
            return 2
        daemon = subprocess.Popen(config.command, env=config.environment)
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

        def forward(signum: int, frame: FrameType | None) -> None:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)

        for sig in STOP_SIGNALS:
            signal.signal(sig, forward)
        try:
            return daemon.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
