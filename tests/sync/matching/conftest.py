"""Fixtures for matching tests: `engine` (SQLite, and PostgreSQL when configured), `world`."""

from __future__ import annotations

import pytest
from matching_world import World, engine
from sqlalchemy import Engine

__all__ = ["engine", "world"]


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)
