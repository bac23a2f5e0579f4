"""The embedded local stack: moto's server started in this process on 127.0.0.1 and a free port."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

# moto accepts any credentials; set dummy ones only where none are configured so that botocore
# never goes looking for an instance profile (a network call that hangs off AWS).
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_stack(port: int | None = None) -> Iterator[str]:
    """Run moto on 127.0.0.1 for the duration of the block; yields its endpoint URL."""
    for name, value in _DUMMY_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
