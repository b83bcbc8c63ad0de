"""Where httpx meets the kit: transport failures and error bodies become ``ApiError``, once.

Both envelopes are understood whichever dialect was asked, so a misconfigured target still gives
a readable error: OpenAI's ``{"error": {message, type, param, code}}`` and DashScope's
``{code, message, request_id}``.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import json
from collections.abc import Iterator
from typing import Any

import httpx

from assistant_kit.errors import ApiConnectionError, ApiError


@contextlib.contextmanager
def wire_errors(dialect: str) -> Iterator[None]:
    """Turn httpx's transport failures into ``ApiConnectionError``."""
    try:
        yield
    except httpx.TransportError as exc:
        # name the failure class: "ConnectError: [Errno 111] Connection refused" says what to fix
        raise ApiConnectionError(
            f"{dialect}: {type(exc).__name__}: {exc}", dialect=dialect
        ) from exc


def _request_id(response: httpx.Response, body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("request_id"), str):
        return str(body["request_id"])
    header = response.headers.get("x-request-id")
    return None if header is None else str(header)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    millis = response.headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def decode(response: httpx.Response, dialect: str) -> dict[str, Any]:
    """The JSON object of a response, or the ``ApiError`` it carries."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if response.status_code >= 400:
        raise error_from(response, body, dialect)
    if not isinstance(body, dict):
        raise ApiError(
            response.status_code,
            "invalid_response",
            f"expected a JSON object, got {response.text[:200]!r}",
            dialect=dialect,
            request_id=response.headers.get("x-request-id"),
        )
    return body


def error_from(response: httpx.Response, body: Any, dialect: str) -> ApiError:
    """The ``ApiError`` for an error response in either envelope (or none)."""
    error = _error_from(response, body, dialect)
    error.retry_after = retry_after(response)
    return error


def _error_from(response: httpx.Response, body: Any, dialect: str) -> ApiError:
    status = response.status_code
    request_id = _request_id(response, body)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return ApiError(
            status,
            str(error.get("code") or error.get("type") or "error"),
            str(error.get("message") or response.reason_phrase),
            dialect=dialect,
            request_id=request_id,
            param=error.get("param"),
        )
    if isinstance(body, dict) and ("code" in body or "message" in body):
        return ApiError(
            status,
            str(body.get("code") or "error"),
            str(body.get("message") or response.reason_phrase),
            dialect=dialect,
            request_id=request_id,
        )
    return ApiError(
        status,
        "http_error",
        response.text[:500] or response.reason_phrase,
        dialect=dialect,
        request_id=request_id,
    )
