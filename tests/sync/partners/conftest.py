from __future__ import annotations

from typing import Any

import pytest
from partner_support import NOW
from sqlalchemy import Engine

from schema.db import transaction
from sync.partners import add_partner


@pytest.fixture
def engine(databases: Any) -> Engine:
    """A warehouse with partner p-acme registered: SQLite, or PostgreSQL when
    ECOSYNC_TEST_DATABASE_URL is set (tables from the models, see tests/conftest.py)."""
    new: Engine = databases.new(models=True)
    with transaction(new) as session:
        add_partner(session, "p-acme", "Acme Cloud", now=NOW)
    return new
