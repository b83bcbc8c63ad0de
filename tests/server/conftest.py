"""Fixtures for the server tests: an app on a real SQLite file, reached in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from assistant_kit.server.app import ServerConfig, create_app

KEY = "test-key"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    """The app over a SQLite file in WAL mode, lifespan entered (ASGITransport sends none)."""
    application = create_app(ServerConfig(database=tmp_path / "kit.db", api_keys=(KEY,)))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client on the app, authenticated, rooted at the host (paths carry /v1)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://kit",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as client:
        yield client
