"""Probes for orchestrators and load balancers, outside the API mounts and without a key.

``GET /health`` is liveness: the process answers (``{"status": "ok"}``). ``GET /ready`` is
readiness: the store answers a query and the server is not draining (``503`` otherwise, with
the reason), so a balancer stops sending new work to a replica that is shutting down.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

__all__ = ["health_routes"]

_NO_STORE = {"cache-control": "no-store"}


def health_routes(
    check_store: Callable[[], object], draining: Callable[[], bool]
) -> list[BaseRoute]:
    """``/health`` and ``/ready``; ``check_store`` raises when the store cannot be used."""

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def ready(request: Request) -> JSONResponse:
        if draining():
            return JSONResponse(
                {"status": "draining", "store": "ok"}, status_code=503, headers=_NO_STORE
            )
        try:
            await anyio.to_thread.run_sync(check_store)
        except Exception as exc:  # any failure of the store means "not ready", with its reason
            body = {"status": "unavailable", "store": f"{type(exc).__name__}: {exc}"}
            return JSONResponse(body, status_code=503, headers=_NO_STORE)
        return JSONResponse({"status": "ok", "store": "ok"}, headers=_NO_STORE)

    return [Route("/health", health, methods=["GET"]), Route("/ready", ready, methods=["GET"])]
