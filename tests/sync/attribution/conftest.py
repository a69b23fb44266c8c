"""Fixtures for attribution tests: `world`, builders over the migrated `warehouse`."""

from __future__ import annotations

import pytest
from attribution_world import World
from sqlalchemy import Engine


@pytest.fixture
def world(warehouse: Engine) -> World:
    return World(warehouse)
