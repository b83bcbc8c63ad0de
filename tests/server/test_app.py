"""The app factory's seams: extra route tables, lifespans, no module-level state."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import BaseRoute

from assistant_kit.server.app import ServerConfig, create_app
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.routes.context import ServerContext

pytestmark = pytest.mark.anyio


EVENTS: dict[int, list[str]] = {}


def runs_table(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """A stand-in for a later module: a route that must win over /threads/{thread_id}."""
    events = EVENTS.setdefault(id(ctx), [])

    @contextlib.asynccontextmanager
    async def engine() -> AsyncIterator[None]:
        events.append(f"start {api.dialect.name} store={ctx.store.schema_version() > 0}")
        yield
        events.append(f"stop {api.dialect.name}")

    ctx.lifespans.append(engine)

    async def create_thread_and_run(call: Call) -> dict[str, Any]:
        return {"object": "thread.run", "dialect": call.dialect.name}

    return [api.route("/threads/runs", create_thread_and_run, ["POST"])]


async def test_extra_route_tables_come_first_and_their_lifespans_run(tmp_path: Path) -> None:
    config = ServerConfig(
        database=tmp_path / "kit.db", extra_routes={"/v1": [runs_table], "/api/v1": [runs_table]}
    )
    app = create_app(config)
    events = EVENTS[id(app.state.context)]
    async with app.router.lifespan_context(app):
        assert events == ["start dashscope store=True", "start openai store=True"]
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": "Bearer k"}
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as http:
            oa = await http.post("/v1/threads/runs", json={}, headers=headers)
            assert oa.json() == {"object": "thread.run", "dialect": "openai"}
            ds = await http.post("/api/v1/threads/runs", json="", headers=headers)
            assert ds.json()["dialect"] == "dashscope" and ds.json()["request_id"]
    assert events[-2:] == ["stop openai", "stop dashscope"]


async def test_two_apps_share_nothing(tmp_path: Path) -> None:
    first = create_app(ServerConfig(database=tmp_path / "a.db"))
    second = create_app(ServerConfig(database=tmp_path / "b.db"))
    assert first.state.context.store is not second.state.context.store
