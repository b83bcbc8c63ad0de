"""The ASGI application: one store, one mount per wire dialect.

``create_app(config)`` builds a Starlette app that serves DashScope's Assistant API under
``/api/v1`` and OpenAI's Assistants v2 under ``/v1`` from one ``Store`` (``MOUNTS``); an object
created through one dialect is visible through the other. Each mount answers in its own dialect,
unknown paths and methods under it included. There is no module-level app::

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
3. a route module, ``routes(api, ctx) -> list[BaseRoute]`` built with
   ``api.route(path, handler, methods, schema=...)`` and rendering through ``api.dialect``, added
   to the ``routes`` of the mounts that serve it (more specific paths first: ``/threads/runs``
   must precede ``/threads/{thread_id}``); handlers may return a ``Response`` (an SSE stream)
   instead of a dict;
4. background parts (an engine, a reaper) registered in ``ctx.lifespans`` by that factory.

A new wire dialect is a module in ``dialects/`` and a ``DialectMount`` in ``MOUNTS``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant_kit.server.auth import Authenticator, check_bind
from assistant_kit.server.config import ServerConfig
from assistant_kit.server.dialects import DASHSCOPE, OPENAI, Dialect
from assistant_kit.server.endpoints import Api
from assistant_kit.server.files import FileStore
from assistant_kit.server.health import health_routes
from assistant_kit.server.knowledge.attachments import ThreadFiles
from assistant_kit.server.knowledge.embeddings import Embedder
from assistant_kit.server.knowledge.records import VECTOR_STORES
from assistant_kit.server.knowledge.vector_stores import VectorStores
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.routes import conversations, crud, files, responses, runs, uploads
from assistant_kit.server.routes import vector_stores as vector_store_routes
from assistant_kit.server.routes.context import RouteFactory, ServerContext
from assistant_kit.server.runs.engine import EngineSettings, RunEngine
from assistant_kit.server.services import Services
from assistant_kit.server.store import open_store
from assistant_kit.server.streams import StreamControl
from assistant_kit.server.tools.file_search import FileSearchTool, WithFileSearch
from assistant_kit.server.tools.plugins import seal_plugin_tokens
from assistant_kit.server.tools.runner import Tools, find_tool

log = logging.getLogger("assistant_kit.server")


@dataclass(frozen=True, slots=True)
class DialectMount:
    """A path the server serves in one dialect, with its route tables in matching order (more
    specific paths first)."""

    path: str
    dialect: Dialect
    routes: tuple[RouteFactory, ...]
    #: This mount's dialect also answers requests for paths outside every mount.
    catch_all: bool = False


#: What the server serves. Lifespans of the route tables start in this order.
MOUNTS: tuple[DialectMount, ...] = (
    DialectMount("/api/v1", DASHSCOPE, (files.read_routes, runs.run_routes, crud.crud_routes)),
    DialectMount(
        "/v1",
        OPENAI,
        (
            files.full_routes,
            uploads.upload_routes,
            vector_store_routes.routes,
            runs.run_routes,
            crud.crud_routes,
            responses.response_routes,
            conversations.conversation_routes,
        ),
        catch_all=True,
    ),
    # Model Studio's OpenAI-compatible Responses API paths (issue 17), on the same state.
    DialectMount("/compatible-mode/v1", OPENAI, (responses.response_routes,)),
    DialectMount("/api/v2/apps/protocols/compatible-mode/v1", OPENAI, (responses.response_routes,)),
)


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the Assistant API app for ``config`` (default: an in-memory store on loopback)."""
    config = config or ServerConfig()
    check_bind(config.host, config.api_keys)
    store = open_store(config.database)
    own_router = not isinstance(config.models, ModelRouter)
    router = config.models if isinstance(config.models, ModelRouter) else ModelRouter(config.models)
    file_store = FileStore(store)
    embedder = Embedder(config.embeddings) if config.embeddings is not None else None
    vector_stores = VectorStores(store, embedder)
    engine = RunEngine(
        store,
        router,
        tools=WithFileSearch(config.tools, FileSearchTool(vector_stores, store)),
        settings=EngineSettings(
            run_expiry_s=config.run_expiry_s,
            max_model_calls=config.max_model_calls,
            resume_on_start=config.resume_runs,
            event_retention_s=config.event_retention_s,
        ),
        save_file=config.save_file or file_store,
    )
    services = Services(store, seal_tools=_token_sealer(config.tools))
    services.thread_deleted.append(_forget_thread(config.tools))
    streams = StreamControl(config.sse_keepalive_s)
    services.messages_added.append(ThreadFiles(vector_stores, store).attach)
    services.resource_tables["vector_store"] = VECTOR_STORES
    context = ServerContext(
        config=config,
        store=store,
        services=services,
        engine=engine,
        files=file_store,
        streams=streams,
        vector_stores=vector_stores,
    )
    auth = Authenticator(config.api_keys, config.trusted_hosts)

    # unauthenticated probes, outside the API mounts
    mounts: list[BaseRoute] = health_routes(store.schema_version, lambda: streams.draining)
    fallback: Api | None = None
    for mount in MOUNTS:
        api = Api(mount.dialect, auth, max_body_bytes=config.max_body_bytes)
        routes: list[BaseRoute] = []
        for factory in (*config.extra_routes.get(mount.path, ()), *mount.routes):
            routes.extend(factory(api, context))
        mounts.append(_DialectMount(mount.path, app=_DialectRoutes(api, routes)))
        if mount.catch_all:
            fallback = api
    assert fallback is not None, "one of MOUNTS answers paths outside every mount"

    async def http_exception(request: Request, exc: Exception) -> Response:
        """Unknown paths and methods, answered in the dialect of the mount they fell under."""
        api = request.scope.get(_API_KEY, fallback)
        assert isinstance(api, Api)
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
            # Ingestion a stopped server left unfinished starts again; on shutdown it stops
            # (those files stay in_progress and are taken up at the next start).
            await vector_stores.resume()
            stack.push_async_callback(vector_stores.aclose)
            for part in context.lifespans:
                await stack.enter_async_context(part())
            yield

    # Plain mounts of route lists (no nested apps): one middleware stack per request.
    app = Starlette(
        routes=mounts,
        exception_handlers={HTTPException: http_exception},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.context = context
    app.state.streams = streams  # `kit serve` drains them on SIGINT / SIGTERM
    return app


def _token_sealer(tools: Tools) -> Callable[[Any], Any]:
    """Tool entries with plug-in tokens replaced by references, before they are stored."""

    def seal(entries: Any) -> Any:
        return seal_plugin_tokens(entries, lambda entry: find_tool(tools, entry))

    return seal


#: Where a request's scope keeps the ``Api`` of the mount that took it.
_API_KEY = "assistant_kit.api"


class _DialectMount(Mount):
    """A mount that takes every path under its prefix, control characters included: Starlette's
    ``{path:path}`` is ``.*``, which stops at a newline (``/api/v1/threads/x%0A`` fell outside
    every mount and was answered in the fallback's dialect)."""

    def __init__(self, path: str, app: ASGIApp) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


class _DialectRoutes(Router):
    """A mount's routes: marks each request it takes with its ``Api``, so that an error raised
    on the way (no such route, wrong method) is answered in the mount's dialect."""

    def __init__(self, api: Api, routes: Sequence[BaseRoute]) -> None:
        # No trailing-slash redirects: /v1/assistants/ is a 401 or 404 in the envelope, not a
        # 307 answered before authentication.
        super().__init__(routes=list(routes), redirect_slashes=False)
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_API_KEY] = self.api
        await super().__call__(scope, receive, send)


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
