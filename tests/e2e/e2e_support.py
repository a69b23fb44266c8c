"""End-to-end helpers: a running sandbox world, a migrated warehouse and real connectors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from connectors.base import Connector
from sandbox.world import World, running_world
from sync.config import Config
from sync.logs import MASKER
from sync.wiring import build_connectors


@dataclass
class Env:
    world: World
    engine: Engine
    config: Config
    connectors: list[Connector]


def make_env(tmp_path: Path, engine: Engine, *, salesforce: bool = True, hubspot: bool = True,
             accounts: int = 300, opportunities: int = 600, seed: int = 3) -> Iterator[Env]:
    with running_world(tmp_path / "world", seed=seed, accounts=accounts,
                       opportunities=opportunities, partners=3, salesforce=salesforce,
                       hubspot=hubspot) as world:
        MASKER.add(world.env().values())
        config = world.config(engine.url.render_as_string(hide_password=False))
        connectors = build_connectors(config)
        for connector in connectors:
            connector.ensure_fields(check_only=False)
        yield Env(world, engine, config, connectors)

