"""The worker's listening socket: responses are not held back by Nagle's algorithm.

uvicorn writes a response's head and body in two writes; with Nagle on, the body waited for
the client's delayed ACK, 40 ms on every keep-alive request served by ``models.worker.running``.
"""

from __future__ import annotations

import socket

import pytest

from models.worker import listening_socket


def test_accepted_connections_have_nagle_off() -> None:
    server = listening_socket("127.0.0.1", 0)
    try:
        server.listen()
        with socket.create_connection(server.getsockname()) as _client:
            accepted, _ = server.accept()
            with accepted:
                # asyncio sets TCP_NODELAY itself only on sockets whose proto is TCP
                assert accepted.proto == socket.IPPROTO_TCP
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.close()


def test_a_port_in_use_raises_and_leaks_no_socket() -> None:
    first = listening_socket("127.0.0.1", 0)
    try:
        first.listen()
        port = first.getsockname()[1]
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", port)
    finally:
        first.close()
