"""What every command shares: the loaded config and a lazily created warehouse engine, and
`pass_app`, the one way a command receives them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import click

from sync.errors import UserError

if TYPE_CHECKING:  # the engine (SQLAlchemy) loads when a command first asks for it
    from sqlalchemy import Engine

    from sync.config import Config

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppContext:
    config: Config
    log_format: str = "auto"
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self) -> Engine:
        if self._engine is None:
            from schema.db import make_engine

            self._engine = make_engine(self.config.warehouse.url, echo=self.config.warehouse.echo)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def pass_app(command: Callable[Concatenate[AppContext, P], R]) -> Callable[P, R]:
    """Hand a click command the AppContext the `ecosync` group made as its first argument.

    Stack it under the click decorators (`@click.command(...)`, options, then `@pass_app`
    last, right above the function), like click's own `pass_context`."""

    @functools.wraps(command)
    def with_app(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context()
        app = ctx.find_object(AppContext)
        if app is None:  # only when a command is invoked outside the `ecosync` root group
            raise UserError(f"no ecosync context; run this as `ecosync {ctx.command_path}`")
        return command(app, *args, **kwargs)

    return with_app
