"""Serving helpers on top of ``sandbox.common``: TCP_NODELAY TLS and a prompt shutdown.

``sandbox.common``'s handler writes response headers and body in separate writes; with Nagle's
algorithm the body then waits for the client's delayed ACK (~40 ms a response, more than the
whole budget of a query page). Setting TCP_NODELAY on accepted sockets removes that stall.
``HttpsServer.stop`` waits for ``serve_forever`` to notice the shutdown flag, which it polls every
0.5 s unless a connection wakes it: `stop_promptly` pokes the port so tests tear down at once.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from sandbox.common import HttpsServer, Tls, make_tls


class _NoDelayContext(ssl.SSLContext):
    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().wrap_socket(sock, *args, **kwargs)


def make_nodelay_tls(directory: Path) -> Tls:
    """make_tls's CA file and certificate, served from a TCP_NODELAY context."""
    base = make_tls(directory)
    ctx = _NoDelayContext(ssl.PROTOCOL_TLS_SERVER)
    base.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return Tls(base.ca, base.ca_file, ctx)


def stop_promptly(server: HttpsServer) -> None:
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=0.1).close()
        stopper.join(0.02)
