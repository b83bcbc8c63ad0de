"""The ``AssistantClient`` ``kit test`` talks to, for a kit.yaml target.

* ``local`` without ``base_url``: the embedded server in-process (``httpx.ASGITransport``, its
  lifespan entered here), built from kit.yaml's ``server`` section: model routing, built-in tools,
  run expiry; its store is ``.kit/server.db`` under the project;
* ``local`` with ``base_url``: a running ``kit serve`` (any key is accepted on loopback);
* ``dashscope`` / ``openai``: that dialect at ``base_url``, the key from ``api_key_env``.

``wrap`` puts a transport around the real one (cassettes, timing). In replay mode nothing is
built but the client: ``replay=True`` gives a client whose transport is ``wrap(None)``'s result::

    async with open_test_client(project, wrap=lambda inner: router) as client:
        ...
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from assistant_kit.api.base import AssistantClient
from assistant_kit.api.local import BASE_PATHS, client_for
from assistant_kit.errors import ConfigError
from assistant_kit.spec.project import Project, Target

#: The embedded server's store, relative to the project root (shared with `kit apply`).
EMBEDDED_DB = Path(".kit") / "server.db"
#: Key sent to a local server when the target names none (`kit serve` accepts any on loopback).
LOCAL_KEY = "local"
#: Seconds one HTTP request may take unless the target's ``timeout_s`` says otherwise; a turn's
#: own ``timeout`` bounds the whole turn.
DEFAULT_REQUEST_TIMEOUT = 600.0
_HOSTED = {
    "dashscope": "https://dashscope.aliyuncs.com/api/v1",
    "openai": "https://api.openai.com/v1",
}

#: Wraps the real transport (``None`` in replay mode: there is none).
Wrap = Callable[[httpx.AsyncBaseTransport | None], httpx.AsyncBaseTransport]


def base_url_of(target: Target) -> str:
    """The API root of a target reached over HTTP (``.../api/v1`` or ``.../v1``)."""
    url = (target.base_url or _HOSTED.get(target.provider, "")).rstrip("/")
    if target.provider == "local" and not url.endswith(BASE_PATHS[target.dialect]):
        url += BASE_PATHS[target.dialect]
    return url


def api_key_of(target: Target, environ: Mapping[str, str] | None = None) -> str:
    """The key to send: from ``api_key_env``; ``local`` targets without one send a placeholder."""
    env = os.environ if environ is None else environ
    if target.api_key_env is None:
        if target.provider == "local":
            return LOCAL_KEY
        raise ConfigError(f"target `{target.name}` needs `api_key_env` naming its key's variable")
    key = env.get(target.api_key_env)
    if not key:
        raise ConfigError(
            f"target `{target.name}` reads its API key from {target.api_key_env}, which is not set"
        )
    return key


def embedded_app(project: Project, database: str | Path | None = None) -> Any:
    """The embedded server app for ``project``: kit.yaml's model routing, tools and run expiry."""
    from assistant_kit.server.app import ServerConfig, create_app
    from assistant_kit.server.models.routing import ModelRouter

    section = project.server
    if database is None:
        path = project.root / EMBEDDED_DB
        path.parent.mkdir(parents=True, exist_ok=True)
        database = path
    router = ModelRouter(section.get("models") or None, base_dir=project.root)
    return create_app(
        ServerConfig(
            database=str(database),
            models=router,
            tools=_builtin_tools(section, project.root),
            run_expiry_s=float(section.get("run_expiry_s") or 600.0),
        )
    )


def _builtin_tools(section: Mapping[str, Any], base_dir: Path) -> Any:
    """``server.tools`` / ``server.plugins`` built by the tools registry, when it is installed."""
    try:
        registry = importlib.import_module("assistant_kit.server.tools.registry")
    except ImportError:
        return {}
    return registry.build_tools(section, base_dir=base_dir)


@contextlib.asynccontextmanager
async def open_test_client(
    project: Project,
    target: Target | None = None,
    *,
    wrap: Wrap | None = None,
    replay: bool = False,
    database: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[AssistantClient]:
    """A client on ``target`` (default: the project's), closed (and the server stopped) on exit.

    With ``replay=True`` no server is started and no network transport is made: every request
    goes to ``wrap(None)`` (a cassette router).
    """
    target = target or project.target
    timeout = float(target.options.get("timeout_s") or DEFAULT_REQUEST_TIMEOUT)
    async with contextlib.AsyncExitStack() as stack:
        inner: httpx.AsyncBaseTransport | None
        if replay:
            inner = None
            key = "replay"
            base_url = (
                f"http://assistant-kit.local{BASE_PATHS[target.dialect]}"
                if target.embedded
                else base_url_of(target)
            )
        elif target.embedded:
            app = embedded_app(project, database)
            await stack.enter_async_context(app.router.lifespan_context(app))
            inner = httpx.ASGITransport(app=app)
            base_url = f"http://assistant-kit.local{BASE_PATHS[target.dialect]}"
            key = api_key_of(target, environ)
        else:
            inner = httpx.AsyncHTTPTransport(retries=0)
            base_url = base_url_of(target)
            key = api_key_of(target, environ)
        if wrap is not None:
            transport = wrap(inner)
        elif inner is not None:
            transport = inner
        else:
            raise ConfigError("replay needs a cassette transport")
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport,
                base_url=base_url,
                timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
            )
        )
        yield client_for(target.dialect, http, api_key=key)
