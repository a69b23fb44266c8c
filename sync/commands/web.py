"""`ecosync web`: the read-only web view and JSON API over the warehouse."""

from __future__ import annotations

import click

from schema.db import make_engine
from sync.context import AppContext, pass_app
from sync.warehouse import require_head


@click.command("web")
@click.option("--host", default=None, help="Address to bind (default [web] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default [web] port, 8080).")
@click.option("--warehouse", "url", default=None, metavar="URL",
              help="Warehouse URL instead of [warehouse] url, e.g. the demo's "
                   "sqlite:///DIR/ecosync.db.")
@pass_app
def web_command(app: AppContext, host: str | None, port: int | None,
                url: str | None) -> None:
    """Serve the read-only web view and JSON API (matrix, accounts, partners, network,
    operations). Binds 127.0.0.1 unless [web] token or trusted_proxy_header is set."""
    from sync.web.server import serve

    engine = make_engine(url) if url else app.engine()
    try:
        require_head(engine)
        serve(engine, app.config, host=host, port=port)
    finally:
        if url:
            engine.dispose()
