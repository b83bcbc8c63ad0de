"""Targets -> clients: an ``AssistantClient`` for a kit.yaml target, starting the embedded server.

The composition module of the client side: ``cli``, ``sync`` and ``testing`` open targets
through it, and it is the only module below ``cli`` that imports the server (its public factory
``create_app``, reached through an ASGI transport).

* ``local`` without ``base_url``: the embedded server in-process (``httpx.ASGITransport``), its
  store in ``.kit/server.db`` under the project so state lasts from one command to the next;
* ``local`` with ``base_url``: a running ``kit serve``;
* ``dashscope``: the DashScope dialect (default base URL the hosted API), key from ``api_key_env``;
* ``openai``: the Assistants v2 dialect at ``base_url``, key from ``api_key_env``.

The dialect is the target's (``Target.dialect``: ``local`` speaks ``openai`` unless kit.yaml
says ``dialect: dashscope``). ``wrap`` lets tests and benches put a transport around the real one
(fault injection, request counting)::

    async with open_target(project) as client:
        plan = await build_plan(client, project.specs, ...)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from assistant_kit.api.base import AssistantClient
from assistant_kit.api.httplog import exchange_hooks
from assistant_kit.api.registry import client_for
from assistant_kit.catalog import WIRE_DIALECTS
from assistant_kit.errors import ConfigError, SpecIssue
from assistant_kit.spec.project import Project, Target

__all__ = [
    "EMBEDDED_DB",
    "Wrap",
    "base_url_of",
    "embedded_app",
    "model_route_issues",
    "open_target",
]

log = logging.getLogger("assistant_kit.targets")

#: The embedded server's store, relative to the project root.
EMBEDDED_DB = Path(".kit") / "server.db"
#: Seconds one request may take unless the target's ``timeout_s`` says otherwise.
DEFAULT_TIMEOUT = 30.0
#: Key sent to a local server when the target names none (`kit serve` accepts any on loopback).
LOCAL_KEY = "local"

#: Wraps the real transport (fault injection, counting, cassettes); ``None`` in replay mode.
Wrap = Callable[[httpx.AsyncBaseTransport | None], httpx.AsyncBaseTransport]


def base_url_of(target: Target) -> str:
    """The API root of a remote target (``.../api/v1`` or ``.../v1``).

    A hosted provider's target speaks the provider's dialect, whose catalog entry names the
    default root; a ``local`` one gets its dialect's base path added when ``base_url`` lacks it.
    """
    wire = WIRE_DIALECTS[target.dialect]
    if target.provider == "local":
        url = (target.base_url or "").rstrip("/")
        return url if url.endswith(wire.base_path) else url + wire.base_path
    return (target.base_url or wire.default_base_url).rstrip("/")


def _api_key(target: Target, environ: Mapping[str, str]) -> str:
    if target.api_key_env is None:
        if target.provider == "local":
            return LOCAL_KEY
        raise ConfigError(f"target `{target.name}` needs `api_key_env` naming its key's variable")
    key = environ.get(target.api_key_env)
    if not key:
        raise ConfigError(
            f"target `{target.name}` reads its API key from {target.api_key_env}, which is not set"
        )
    return key


@contextlib.asynccontextmanager
async def open_target(
    project: Project,
    target: Target | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    wrap: Wrap | None = None,
    timeout: float | None = None,
    database: str | Path | None = None,
    replay: bool = False,
) -> AsyncIterator[AssistantClient]:
    """A client on ``target`` (default: the project's), closed (and the server stopped) on exit.

    ``database`` overrides the embedded server's store (default ``.kit/server.db``); ``timeout``
    the target's ``timeout_s`` (default 30 seconds per request). With ``replay=True`` no server is
    started and no network transport is made: every request goes to ``wrap(None)`` (a cassette
    router), so ``wrap`` is required.
    """
    target = target or project.target
    if timeout is None:
        timeout = float(target.options.get("timeout_s") or DEFAULT_TIMEOUT)
    env = os.environ if environ is None else environ
    embedded_url = f"http://assistant-kit.local{WIRE_DIALECTS[target.dialect].base_path}"
    async with contextlib.AsyncExitStack() as stack:
        inner: httpx.AsyncBaseTransport | None
        if replay:
            inner, key = None, "replay"
            base_url = embedded_url if target.embedded else base_url_of(target)
        elif target.embedded:
            from assistant_kit.server.store.base import StoreError

            app = embedded_app(project, database)
            try:
                await stack.enter_async_context(app.router.lifespan_context(app))
            except StoreError as exc:  # a store that is not SQLite, or a locked one
                store = database or project.root / EMBEDDED_DB
                raise ConfigError(
                    f"cannot open the embedded server's store {store}: {exc}"
                ) from exc
            inner, key, base_url = httpx.ASGITransport(app=app), _api_key(target, env), embedded_url
        else:
            inner = httpx.AsyncHTTPTransport(retries=0)
            key, base_url = _api_key(target, env), base_url_of(target)
        where = "replay" if replay else "embedded server" if target.embedded else base_url
        log.info("target `%s`: %s (%s dialect)", target.name, where, target.dialect)
        transport = wrap(inner) if wrap is not None else inner
        if transport is None:
            raise ConfigError("replay needs a cassette transport")
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport,
                base_url=base_url,
                timeout=httpx.Timeout(timeout),
                # `kit test -j N` and `kit apply` share one client across concurrent tasks
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
                event_hooks=exchange_hooks(),  # -vv / KIT_LOG=debug shows every exchange
            )
        )
        yield client_for(target.dialect, http, api_key=key)


def embedded_app(project: Project, database: str | Path | None = None) -> Any:
    """The embedded server for ``project``, configured by kit.yaml's ``server`` section."""
    # the server is reached only through its public factory and an ASGI transport
    from assistant_kit.server.app import create_app
    from assistant_kit.server.config import config_from_kit

    if database is None:
        path = project.root / EMBEDDED_DB
        path.parent.mkdir(parents=True, exist_ok=True)
        database = path
    # kit.yaml's `server:` section routes models and configures built-in tools, as for `kit serve`
    # runs a `kit` process left behind (Ctrl-C, a closed terminal) are cancelled, not resumed
    config = config_from_kit(
        project.server, base_dir=project.root, database=str(database), resume_runs=False
    )
    return create_app(config)


def model_route_issues(project: Project) -> list[SpecIssue]:
    """What the embedded server would refuse at its first run, found before: kit.yaml
    ``server.models`` that cannot be built (a scripted script with a bad regex, an unknown
    option) and spec models no route takes. ``[]`` for any other target (its server decides)."""
    if not project.target.embedded:
        return []
    import re

    from assistant_kit.server.models.routing import ModelRouter
    from assistant_kit.spec.load import display_path, read_document

    kit_file = display_path(project.config_file) if project.config_file else "kit.yaml"
    try:
        router = ModelRouter(project.server.get("models") or None, base_dir=project.root)
    except ConfigError as exc:
        # a script's own position (path:line: ...) when the message has one, else kit.yaml's
        found = re.match(r"^(.+?):(\d+): (.*)$", str(exc), re.S)
        if found:
            return [SpecIssue(display_path(Path(found[1])), int(found[2]), 1, found[3])]
        line, col = 1, 1
        if project.config_file is not None:
            pos = read_document(project.config_file, kit_file).position(("server", "models"))
            line, col = pos.line, pos.col
        return [SpecIssue(kit_file, line, col, str(exc))]
    routes = router.routes
    if "default" in routes:
        return []
    configured = ", ".join(sorted(routes)) or "none"
    issues = []
    for spec in project.specs:
        if spec.model in routes:
            continue
        pos = read_document(Path(spec.file), spec.file).position(("model",))
        issues.append(
            SpecIssue(
                spec.file,
                pos.line,
                pos.col,
                f'model "{spec.model}" has no route on the embedded server: kit.yaml '
                f"server.models has no entry for it and no `default` (configured: {configured})",
            )
        )
    return issues
