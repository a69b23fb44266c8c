"""Fixtures for alert tests: `wh`, a small warehouse builder over the migrated `warehouse`."""

from __future__ import annotations

import pytest
from alerts_support import Warehouse
from sqlalchemy import Engine


@pytest.fixture
def wh(warehouse: Engine) -> Warehouse:
    return Warehouse(warehouse)
