"""What a route table is built from: the dialect's ``Api`` wrapper and the app's parts."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from assistant_kit.server.endpoints import Api

if TYPE_CHECKING:
    from assistant_kit.server.config import ServerConfig
    from assistant_kit.server.files import FileStore
    from assistant_kit.server.knowledge.vector_stores import VectorStores
    from assistant_kit.server.runs.engine import RunEngine
    from assistant_kit.server.services import Services
    from assistant_kit.server.store.base import Store
    from assistant_kit.server.streams import StreamControl


@dataclass(slots=True)
class ServerContext:
    """The parts of one app that handlers reach: config, store, services, the run engine,
    the file store and the vector stores.

    ``lifespans`` are entered in order after the store opens and left in reverse before it
    closes; a route factory that needs a background part (a run reaper, model weights) appends
    a factory of an async context manager here when it builds its routes.
    """

    config: ServerConfig
    store: Store
    services: Services
    engine: RunEngine
    files: FileStore
    vector_stores: VectorStores
    #: The open SSE streams (keep-alive comments, ended on a drain); ``None``: plain streams.
    streams: StreamControl | None = None
    lifespans: list[Callable[[], AbstractAsyncContextManager[Any]]] = field(default_factory=list)


#: A route table: ``factory(api, context) -> routes`` (one per module; a mount lists its tables).
RouteFactory = Callable[[Api, ServerContext], list[BaseRoute]]
