"""The kit's ``local`` target: the embedded server, reached in-process through httpx.

Nothing here imports the server: it takes any ASGI app with a Starlette-style router (what
``assistant_kit.server.app.create_app`` returns) and goes through ``httpx.ASGITransport``, so the
kit and ``kit serve`` share one code path::

    app = create_app(ServerConfig(database=".kit/server.db"))
    async with in_process(app, dialect="openai") as client:
        await client.list_all_assistants()
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from assistant_kit.api.base import AssistantClient
from assistant_kit.api.registry import client_for
from assistant_kit.catalog import WIRE_DIALECTS

__all__ = ["in_process"]


@contextlib.asynccontextmanager
async def in_process(
    app: Any,
    *,
    dialect: str = "openai",
    api_key: str = "local",
    lifespan: bool = True,
) -> AsyncIterator[AssistantClient]:
    """A client on ``app`` without a socket; enters the app's lifespan unless told not to.

    ``httpx.ASGITransport`` sends no lifespan events, so this runs
    ``app.router.lifespan_context(app)`` itself (pass ``lifespan=False`` when the caller already
    did). Responses are buffered whole: fine for CRUD, not for watching a stream arrive.
    """
    base_url = f"http://assistant-kit.local{WIRE_DIALECTS[dialect].base_path}"
    async with contextlib.AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
        )
        yield client_for(dialect, http, api_key=api_key)
