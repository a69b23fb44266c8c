"""A provisioned sandbox (both CRM emulators, owned fields created, a migrated warehouse)
for each doctor test; tests break one thing and expect the one line that says so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from doctor_support import Setup
from sqlalchemy import Engine

from sandbox.world import running_world


@pytest.fixture
def provisioned(tmp_path: Path, new_database: Callable[..., Engine]) -> Iterator[Setup]:
    engine = new_database()
    url = engine.url.render_as_string(hide_password=False)
    with running_world(tmp_path / "world", accounts=40, opportunities=40, partners=2) as world:
        setup = Setup(world, tmp_path, url)
        ensured = setup.run("fields", "ensure")  # the provisioning step the guides prescribe
        assert ensured.exit_code == 0, ensured.output
        yield setup
