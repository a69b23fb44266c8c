"""What every command shares: the loaded config and a lazily created warehouse engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from schema.db import make_engine
from sync.config import Config


@dataclass
class AppContext:
    config: Config
    log_format: str = "auto"
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.config.warehouse.url, echo=self.config.warehouse.echo)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
