"""The ASGI application: one store, two wire dialects.

``create_app(config)`` builds a Starlette app that serves DashScope's Assistant API under
``/api/v1`` and OpenAI's Assistants v2 under ``/v1`` from one ``Store``; an object created through
one dialect is visible through the other. There is no module-level app::

    app = create_app(ServerConfig(database=":memory:"))
    async with app.router.lifespan_context(app):       # opens (and later closes) the store
        ...

``kit serve`` runs it under uvicorn; the kit's ``local`` target reaches it in-process through
``httpx.ASGITransport`` (see ``assistant_kit.api.local``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Mount

from assistant_kit.server.auth import Authenticator, check_bind
from assistant_kit.server.endpoints import Api
from assistant_kit.server.envelopes import DASHSCOPE, OPENAI, Dialect
from assistant_kit.server.routes import dashscope, openai
from assistant_kit.server.routes.context import RouteFactory, ServerContext
from assistant_kit.server.services import Services
from assistant_kit.server.store import Store

#: Route tables per dialect, in matching order: put more specific paths first (a later
#: ``/threads/runs`` table must come before ``/threads/{thread_id}``, so prepend run tables).
OPENAI_ROUTES: list[RouteFactory] = [openai.routes]
DASHSCOPE_ROUTES: list[RouteFactory] = [dashscope.routes]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the app is built from; later runtime parts add fields here.

    ``api_keys`` empty means "any non-empty bearer key", which ``create_app`` only allows when
    ``host`` is a loopback address.
    """

    database: str | Path = ":memory:"
    api_keys: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8900
    #: Request bodies larger than this get a 413.
    max_body_bytes: int = 2 * 1024 * 1024
    #: Extra route factories per dialect, matched before the built-in tables.
    openai_routes: Sequence[RouteFactory] = field(default=())
    dashscope_routes: Sequence[RouteFactory] = field(default=())


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the Assistant API app for ``config`` (default: an in-memory store on loopback)."""
    config = config or ServerConfig()
    check_bind(config.host, config.api_keys)
    store = Store(config.database)
    context = ServerContext(config=config, store=store, services=Services(store))
    auth = Authenticator(config.api_keys)

    def mount(path: str, dialect: Dialect, factories: Sequence[RouteFactory]) -> Mount:
        api = Api(dialect, auth, max_body_bytes=config.max_body_bytes)
        routes: list[BaseRoute] = []
        for factory in factories:
            routes.extend(factory(api, context))
        sub_app = Starlette(routes=routes, exception_handlers={HTTPException: api.http_exception})
        return Mount(path, app=sub_app)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with store.lifespan():
            yield

    app = Starlette(
        routes=[
            mount("/v1", OPENAI, [*config.openai_routes, *OPENAI_ROUTES]),
            mount("/api/v1", DASHSCOPE, [*config.dashscope_routes, *DASHSCOPE_ROUTES]),
        ],
        exception_handlers={HTTPException: _plain_not_found(auth)},
        lifespan=lifespan,
    )
    app.state.context = context
    return app


def _plain_not_found(auth: Authenticator):  # type: ignore[no-untyped-def]
    """Paths outside both mounts: OpenAI's envelope (the more common client)."""
    api = Api(OPENAI, auth, max_body_bytes=0)
    return api.http_exception
