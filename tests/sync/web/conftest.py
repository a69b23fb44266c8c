"""Web tests: the app over a migrated warehouse (SQLite, or PostgreSQL via the env), driven
in process with FastAPI's TestClient; the browser tests serve it for real."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_world import Built, build, client_for

from sync.config import Config, WebConfig


@pytest.fixture
def world(warehouse: Engine) -> tuple[Engine, Built]:
    return warehouse, build(warehouse, unshared=True)


@pytest.fixture
def client(world: tuple[Engine, Built]) -> Iterator[TestClient]:
    with client_for(world[0]) as c:
        yield c


@pytest.fixture
def token_client(world: tuple[Engine, Built]) -> Callable[..., TestClient]:
    def make(token: str = "s3cret-token-value",  # noqa: S107 - a test token
             header: str = "") -> TestClient:
        cfg = Config(web=WebConfig(token=token, trusted_proxy_header=header))
        return client_for(world[0], cfg)
    return make
