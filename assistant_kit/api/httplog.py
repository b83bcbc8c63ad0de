"""HTTP exchanges with a target as debug log records (``assistant_kit.http``).

``exchange_hooks()`` gives httpx event hooks that log each request (method, URL, JSON body cut
short) and each response (status, time, JSON body cut short) when debug logging is on, and cost
nothing otherwise. Credentials headers are never logged; whoever shows the records still
scrubs them (the CLI does), since a body can carry anything::

    httpx.AsyncClient(..., event_hooks=exchange_hooks())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

__all__ = ["MAX_BODY", "exchange_hooks"]

log = logging.getLogger("assistant_kit.http")

#: Characters of a body shown in a record.
MAX_BODY = 2000

_STARTED = "assistant_kit.started"


def _body(content: bytes, content_type: str) -> str:
    if not content or "json" not in content_type:
        return ""
    text = content.decode("utf-8", "replace")
    if len(text) > MAX_BODY:
        text = text[:MAX_BODY] + f"... ({len(content)} bytes)"
    return " " + text


async def _on_request(request: httpx.Request) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    request.extensions[_STARTED] = time.perf_counter()
    content = b""
    if isinstance(request.stream, httpx.ByteStream):
        content = request.content
    log.debug(
        "> %s %s%s",
        request.method,
        request.url,
        _body(content, request.headers.get("content-type", "")),
    )


async def _on_response(response: httpx.Response) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    request = response.request
    started = request.extensions.get(_STARTED)
    took = f" in {(time.perf_counter() - started) * 1000:.0f} ms" if started else ""
    content_type = response.headers.get("content-type", "")
    body = ""
    if "json" in content_type:  # never an SSE stream: reading it here would buffer it whole
        await response.aread()
        body = _body(response.content, content_type)
    log.debug(
        "< %s %s %s %s%s%s",
        response.status_code,
        response.reason_phrase,
        request.method,
        request.url,
        took,
        body,
    )


def exchange_hooks() -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
    """httpx ``event_hooks`` that log every exchange at debug level."""
    return {"request": [_on_request], "response": [_on_response]}
