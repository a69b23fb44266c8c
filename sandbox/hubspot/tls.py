"""TLS for the emulator: ``sandbox.common.make_tls`` plus TCP_NODELAY on accepted sockets.

``sandbox.common``'s handler writes the response headers and the body separately. With
Nagle's algorithm on, the body waits for the client's delayed ACK of the headers, adding
about 40 ms to every response, more than the whole budget of a list page. Setting
TCP_NODELAY when the socket is wrapped removes it without touching the shared module.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from pathlib import Path
from typing import Any

from sandbox.common import Tls, make_tls


class _NoDelayContext(ssl.SSLContext):
    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().wrap_socket(sock, *args, **kwargs)


def make_fast_tls(directory: Path) -> Tls:
    """Same CA and certificate handling as make_tls, with a TCP_NODELAY server context."""
    base = make_tls(directory)
    ctx = _NoDelayContext(ssl.PROTOCOL_TLS_SERVER)
    base.ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return Tls(base.ca, base.ca_file, ctx)
