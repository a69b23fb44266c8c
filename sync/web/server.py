"""Serving the app: `ecosync web` in the foreground, `ecosync run` in a thread beside the
daemon's loop (one process in production)."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from sync.config import Config
from sync.errors import UserError
from sync.logs import get_logger
from sync.web.auth import check_bind

log = get_logger("ecosync.web")


def _server(engine: Engine, config: Config, host: str, port: int) -> object:
    try:
        import uvicorn

        from sync.web.app import create_app
    except ImportError as exc:
        raise UserError(f"the web view needs {exc.name}, which is not installed; install "
                        "ecosync[web] (pip install 'ecosync[web]')") from None
    check_bind(host, config.web)
    app = create_app(engine, config)
    settle()
    # uvicorn's own access log would print query strings; ecosync logs what it refuses.
    cfg = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                         server_header=False, proxy_headers=False)
    return uvicorn.Server(cfg)


_SETTLED = False


def settle() -> None:
    """Once per serving process, when the app is built: the objects alive then (modules,
    FastAPI's routes and models, SQLAlchemy's mappers: ~130k) leave the cyclic collector's
    reach (`gc.freeze`), so a full collection scans what requests made, not them. Without it
    one took 35-55 ms in the middle of whichever request set it off (bench/web.py: the p95
    of a 10 ms account page on PostgreSQL read 65-90 ms). Not done by `create_app`: tests
    build many apps in one process, and frozen objects hide from `gc.get_referrers`."""
    global _SETTLED
    if not _SETTLED:
        _SETTLED = True
        gc.collect()
        gc.freeze()


def serve(engine: Engine, config: Config, *, host: str | None = None,
          port: int | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    host = host or config.web.host
    port = port or config.web.port
    server = _server(engine, config, host, port)
    log.info("web view serving", url=f"http://{_url_host(host)}:{port}/")
    try:
        server.run()  # type: ignore[attr-defined]
    except OSError as exc:
        raise UserError(f"cannot serve the web view on {host}:{port} ({exc.strerror}); "
                        "change [web] port or pass --port") from None


@dataclass
class Background:
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(timeout=10)


def serve_in_thread(engine: Engine, config: Config) -> Background:
    """The daemon's web view: started beside the tick loop, stopped with it."""
    server = _server(engine, config, config.web.host, config.web.port)
    # uvicorn leaves signals to the main thread (the daemon's own handlers) when it runs in
    # another one.
    thread = threading.Thread(target=server.run, name="ecosync-web",  # type: ignore[attr-defined]
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not getattr(server, "started", False):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise UserError(f"cannot serve the web view on {config.web.host}:"
                            f"{config.web.port} (is the port taken?); change [web] port")
        thread.join(0.02)
    log.info("web view serving", url=f"http://{_url_host(config.web.host)}:{config.web.port}/")
    return Background(server, thread)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
