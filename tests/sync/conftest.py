"""Fixtures of the sync tests: the embedded server in-process, in either dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from assistant_kit.api.base import AssistantClient
from assistant_kit.api.registry import client_for
from assistant_kit.catalog import WIRE_DIALECTS
from assistant_kit.server.app import ServerConfig, create_app

from .faults import FaultyTransport


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["dashscope", "openai"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server_app(tmp_path: Path) -> AsyncIterator[object]:
    """The embedded server with a SQLite file, its lifespan entered."""
    app = create_app(ServerConfig(database=str(tmp_path / "server.db")))
    async with app.router.lifespan_context(app):
        yield app


ClientFactory = Callable[..., AssistantClient]


@pytest.fixture
async def make_client(server_app: object) -> AsyncIterator[ClientFactory]:
    """``make_client(dialect, faults=...)``: clients on the one server, each with its transport."""
    opened: list[httpx.AsyncClient] = []

    def make(dialect: str, transport: FaultyTransport | None = None) -> AssistantClient:
        inner = transport or FaultyTransport(httpx.ASGITransport(app=server_app))  # type: ignore[arg-type]
        http = httpx.AsyncClient(
            transport=inner,
            base_url=f"http://assistant-kit.local{WIRE_DIALECTS[dialect].base_path}",
        )
        opened.append(http)
        return client_for(dialect, http, api_key="local")

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture
def asgi(server_app: object) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=server_app)  # type: ignore[arg-type]
