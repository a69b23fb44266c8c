from __future__ import annotations

from pathlib import Path

import pytest
from partner_support import partner_warehouse
from sqlalchemy import Engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """A SQLite warehouse (tables from the models) with partner p-acme registered."""
    return partner_warehouse(tmp_path)
