"""HTTPS plumbing shared by the Salesforce and HubSpot emulators.

Each emulator is an *app*: a function from Request to Response that owns its data and
routing. This module serves an app over real TLS on 127.0.0.1 (a trustme CA written to a
file clients trust), with keep-alive, per-request latency and per-endpoint call counts.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Close the TCP connection without answering (fault injection: dropped connection).
    drop: bool = False


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    out = {"Content-Type": "application/json;charset=UTF-8"}
    out.update(headers or {})
    return Response(status, body, out)


App = Callable[[Request], Response]


@dataclass(slots=True)
class Tls:
    ca: trustme.CA
    ca_file: Path
    server_context: ssl.SSLContext


def make_tls(directory: Path) -> Tls:
    """A fresh CA and a localhost certificate; the CA PEM is written to directory/ca.pem."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca, ca_file, ctx)


@dataclass(slots=True)
class Traffic:
    """What the emulator saw: call counts per endpoint key, and a configurable latency."""

    latency_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Called with each counted call's key before it is served (a test kills a client at
    # its Nth call: a crash point chosen by events, not by wall-clock timing).
    on_call: Callable[[str], None] | None = None

    def count(self, key: str) -> None:
        with self.lock:
            self.calls[key] += 1
        hook = self.on_call
        if hook is not None:
            hook(key)

    def total(self) -> int:
        with self.lock:
            return sum(self.calls.values())

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()


@dataclass(slots=True)
class Faults:
    """Seeded fault injection: each kind fires with its own probability per eligible request."""

    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    rng: random.Random = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fired: Counter[str] = field(default_factory=Counter)
    # Kinds that fire on exactly the next n eligible requests, whatever their rate.
    pending: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def next(self, **counts: int) -> None:
        """Fire each named kind on its next n eligible requests (then never again, unless a
        rate is configured too): a fault that clears after n attempts."""
        with self.lock:
            self.pending.update(counts)

    def configure(self, seed: int | None = None, **rates: float) -> None:
        with self.lock:
            if seed is not None:
                self.seed = seed
                self.rng = random.Random(seed)
            self.rates.update(rates)

    def clear(self) -> None:
        with self.lock:
            self.rates.clear()
            self.pending.clear()

    def fire(self, kind: str) -> bool:
        with self.lock:
            if self.pending[kind] > 0:
                self.pending[kind] -= 1
                self.fired[kind] += 1
                return True
            rate = self.rates.get(kind, 0.0)
            if rate <= 0 or self.rng.random() >= rate:
                return False
            self.fired[kind] += 1
            return True

    def echo_status(self) -> int | None:
        """The status of an `echo_500` / `echo_400` / `echo_401` fault that fires, if any."""
        for status in ECHO_STATUSES:
            if self.fire(f"echo_{status}"):
                return status
        return None


# A misbehaving CRM or proxy that quotes the request back in its error body: the bearer token,
# the OAuth form (client secret, refresh token, password) or the SOAP login envelope.
ECHO_STATUSES = (500, 400, 401)


def echoed_request(request: Request) -> str:
    """The request's credentials as a careless server would echo them in an error message."""
    auth = request.headers.get("authorization", "")
    body = request.body.decode("utf-8", "replace")[:4000]
    return f"cannot process {request.method} {request.path} (Authorization: {auth}; body: {body})"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # the emulators keep their own counters; stderr noise helps nobody

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        latency = self.server.traffic.latency_s
        if latency:
            time.sleep(latency)
        try:
            response = self.server.app(request)
        except Exception as exc:  # an emulator bug must show as a 500, not hang the client
            response = json_response(
                500, [{"message": f"sandbox error: {exc!r}", "errorCode": "UNKNOWN_EXCEPTION"}]
            )
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        # The Date header follows the emulated platform's clock (frozen or advanced by a
        # test), as a real server's follows its own: clients read the server's time from it.
        self.send_response_only(response.status)
        self.send_header("Server", self.version_string())
        clock = self.server.clock
        self.send_header("Date", email.utils.format_datetime(clock(), usegmt=True) if clock
                         else self.date_time_string())
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: App, traffic: Traffic, tls: Tls,
                 clock: Callable[[], datetime] | None = None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.app = app
        self.traffic = traffic
        self.tls = tls
        self.clock = clock

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # Headers and body leave in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms per response), which would dominate every benchmark.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.server_context.wrap_socket(sock, server_side=True), addr


class HttpsServer:
    """Serves an app on https://127.0.0.1:<port> (a free one unless given) in a background
    thread."""

    def __init__(self, app: App, traffic: Traffic, tls: Tls,
                 clock: Callable[[], datetime] | None = None, port: int = 0) -> None:
        # port 0: a free one; a given port lets `sandbox serve` keep its URLs across restarts.
        self._server = _Server(app, traffic, tls, clock, port)
        # A short poll so stop() returns at once instead of after serve_forever's 0.5 s nap.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> HttpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
