"""What the web routes share with the app: the request context (a read-only session, the share
policies, the clock) and the JSON/CSV responders. Its own module so that routes and the app
factory import it, never each other."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sync.config import Config
from sync.sharing import Policies, policies
from sync.web.render import as_csv, as_json


class Ctx:
    """What a request handler needs: a read-only session, the share policies, the clock."""

    def __init__(self, request: Request, session: Session) -> None:
        self.request = request
        self.session = session
        self.config: Config = request.app.state.config
        self.now: datetime = request.app.state.clock()
        self._policies: Policies | None = None

    @property
    def policies(self) -> Policies:
        if self._policies is None:
            self._policies = policies(self.session)
        return self._policies


def context(request: Request) -> Iterator[Ctx]:
    engine: Engine = request.app.state.engine
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            # No write action exists; the database enforces it for every query too. The
            # driver opens the transaction as BEGIN READ ONLY (and the pool resets it on
            # return): a SET TRANSACTION statement of its own was one more round trip.
            session.connection(execution_options={"postgresql_readonly": True})
        try:
            yield Ctx(request, session)
        finally:
            session.rollback()


CtxDep = Depends(context)


def as_json_error(detail: str, status: int = 401) -> Response:
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": detail}, status_code=status)


def respond(ctx: Ctx, view_fn: Callable[[], object], fmt: str, table: str | None) -> Response:
    """Shared by the API routes: the view as JSON or one of its tables as CSV."""
    from sync.web.queries.common import View

    view = view_fn()
    assert isinstance(view, View)
    if fmt == "csv":
        if table and table not in {t.name for t in view.tables}:
            names = ", ".join(t.name for t in view.tables)
            return as_json_error(f"no table {table!r} here; use one of: {names}", 404)
        return as_csv(view, table)
    return as_json(view)


def query_without(request: Request, *names: str) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    return urlencode(kept)
