"""Report tests reuse the matching tests' warehouse builders (tests/sync/matching)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "matching"))

import pytest
from matching_world import World, engine
from sqlalchemy import Engine

__all__ = ["engine", "world"]


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)
