"""End-to-end fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Env, make_env
from sqlalchemy import Engine


@pytest.fixture
def both(tmp_path: Path, warehouse: Engine) -> Iterator[Env]:
    yield from make_env(tmp_path, warehouse)
