"""The ASGI application: one store, two wire dialects.

``create_app(config)`` builds a Starlette app that serves DashScope's Assistant API under
``/api/v1`` and OpenAI's Assistants v2 under ``/v1`` from one ``Store``; an object created through
one dialect is visible through the other. There is no module-level app::

    app = create_app(ServerConfig(database=":memory:"))
    async with app.router.lifespan_context(app):       # opens (and later closes) the store
        ...

``kit serve`` runs it under uvicorn; the kit's ``local`` target reaches it in-process through
``httpx.ASGITransport`` (see ``assistant_kit.api.local``).

Adding a feature (runs, for instance) touches no existing handler:

1. a migration at the end of ``store/migrations.py`` (tables with ``seq``, ``id``,
   ``created_at``; thread-owned ones also go in ``THREAD_CHILDREN`` of ``store/records.py``);
2. a record dataclass and a ``Table`` for it in ``store/records.py``, used through
   ``Store.insert/get/update/list_page`` (``update(..., expect=...)`` for conditional moves);
3. a route module per dialect, ``routes(api, ctx) -> list[BaseRoute]`` built with
   ``api.route(path, handler, methods, schema=...)``, inserted at the front of
   ``OPENAI_ROUTES`` / ``DASHSCOPE_ROUTES`` (``/threads/runs`` must precede
   ``/threads/{thread_id}``); handlers may return a ``Response`` (an SSE stream) instead of a dict;
4. background parts (an engine, a reaper) registered in ``ctx.lifespans`` by that factory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from assistant_kit.server.auth import Authenticator, check_bind
from assistant_kit.server.config import ServerConfig
from assistant_kit.server.endpoints import Api
from assistant_kit.server.envelopes import DASHSCOPE, OPENAI
from assistant_kit.server.files import FileStore
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.routes import dashscope, files, openai, runs
from assistant_kit.server.routes.context import RouteFactory, ServerContext
from assistant_kit.server.runs.engine import EngineSettings, RunEngine
from assistant_kit.server.services import Services
from assistant_kit.server.store import open_store
from assistant_kit.server.toolbox import Tools, find_tool
from assistant_kit.server.tools.plugins import seal_plugin_tokens

log = logging.getLogger("assistant_kit.server")

#: Route tables per dialect, in matching order: put more specific paths first (a later
#: ``/threads/runs`` table must come before ``/threads/{thread_id}``, so prepend run tables).
OPENAI_ROUTES: list[RouteFactory] = [files.openai_routes, runs.openai_routes, openai.routes]
DASHSCOPE_ROUTES: list[RouteFactory] = [
    files.dashscope_routes,
    runs.dashscope_routes,
    dashscope.routes,
]


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the Assistant API app for ``config`` (default: an in-memory store on loopback)."""
    config = config or ServerConfig()
    check_bind(config.host, config.api_keys)
    store = open_store(config.database)
    own_router = not isinstance(config.models, ModelRouter)
    router = config.models if isinstance(config.models, ModelRouter) else ModelRouter(config.models)
    file_store = FileStore(store)
    engine = RunEngine(
        store,
        router,
        tools=config.tools,
        settings=EngineSettings(
            run_expiry_s=config.run_expiry_s, max_model_calls=config.max_model_calls
        ),
        save_file=config.save_file or file_store,
    )
    services = Services(store, seal_tools=_token_sealer(config.tools))
    services.thread_deleted.append(_forget_thread(config.tools))
    context = ServerContext(
        config=config,
        store=store,
        services=services,
        engine=engine,
        files=file_store,
    )
    auth = Authenticator(config.api_keys)

    apis = {
        "/api/v1": Api(DASHSCOPE, auth, max_body_bytes=config.max_body_bytes),
        "/v1": Api(OPENAI, auth, max_body_bytes=config.max_body_bytes),
    }
    tables = {
        "/api/v1": [*config.dashscope_routes, *DASHSCOPE_ROUTES],
        "/v1": [*config.openai_routes, *OPENAI_ROUTES],
    }
    mounts: list[BaseRoute] = []
    for path, api in apis.items():
        routes: list[BaseRoute] = []
        for factory in tables[path]:
            routes.extend(factory(api, context))
        mounts.append(Mount(path, routes=routes))

    async def http_exception(request: Request, exc: Exception) -> Response:
        """Unknown paths and methods, answered in the envelope of the dialect asked for."""
        path = request.url.path
        api = apis["/api/v1"] if path.startswith("/api/v1/") else apis["/v1"]
        return await api.http_exception(request, exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with store.lifespan(), contextlib.AsyncExitStack() as stack:
            if own_router:
                stack.push_async_callback(router.aclose)
            closer = getattr(config.tools, "aclose", None)
            if callable(closer):  # a tool registry built for this app (kit serve)
                stack.push_async_callback(closer)
            # Pushed last, so it runs first: the run tasks stop (and stay resumable) before
            # the backends and tools they are using are closed under them, which would fail
            # every run in flight at shutdown.
            await engine.start()
            stack.push_async_callback(engine.stop)
            for part in context.lifespans:
                await stack.enter_async_context(part())
            yield

    # Plain mounts of route lists (no nested apps): one middleware stack per request.
    app = Starlette(
        routes=mounts,
        exception_handlers={HTTPException: http_exception},
        lifespan=lifespan,
    )
    app.state.context = context
    return app


def _token_sealer(tools: Tools) -> Callable[[Any], Any]:
    """Tool entries with plug-in tokens replaced by references, before they are stored."""

    def seal(entries: Any) -> Any:
        return seal_plugin_tokens(entries, lambda entry: find_tool(tools, entry))

    return seal


def _forget_thread(tools: Tools) -> Callable[[str], Awaitable[None]]:
    """Tell the built-in tools that keep per-thread state (the code interpreter's worker) that
    a thread is gone."""

    async def forget(thread_id: str) -> None:
        if isinstance(tools, Mapping):
            found: Iterable[object] = tools.values()
        elif isinstance(tools, Iterable):
            found = tools
        else:
            found = ()
        seen: set[int] = set()
        for tool in found:
            hook = getattr(tool, "forget_thread", None)
            if id(tool) in seen or not callable(hook):
                continue
            seen.add(id(tool))
            try:
                await hook(thread_id)
            except Exception:  # the thread is deleted either way
                log.exception("forgetting thread %s failed", thread_id)

    return forget
