"""The thin layer every route handler sits behind: auth, body, validation, envelope.

A handler takes a ``Call`` and returns the object to send (a dict) or a ready ``Response`` (for
streams). ``Api.route`` wraps it so that, in the dialect's envelope and never as a 500 for bad
input: a missing or wrong key is a 401, a body over the limit a 413, a body that is not JSON a 400,
a wrong content type a 415, a schema violation a 400, an unknown id a 404::

    api = Api(OPENAI, authenticator, max_body_bytes=1 << 20)
    routes = [api.route("/assistants", create_assistant, ["POST"], schema="assistant_create")]
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from assistant_kit.errors import ApiError
from assistant_kit.server.auth import Authenticator
from assistant_kit.server.dialects.base import Dialect
from assistant_kit.server.ids import parse_id
from assistant_kit.server.services import NotFound, ThreadBusy
from assistant_kit.server.store.base import (
    Conflict,
    PageQuery,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from assistant_kit.server.validation import validate

log = logging.getLogger("assistant_kit.server")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Deepest nesting of objects and arrays a request body may have.
MAX_JSON_DEPTH = 128


@dataclass(slots=True)
class Call:
    """One request as a handler sees it: the parsed body, the path ids, the request id."""

    request: Request
    body: dict[str, Any]
    request_id: str
    dialect: Dialect

    def id(self, kind: str, name: str | None = None) -> str:
        """The neutral id in path parameter ``name`` (default ``<kind>_id``), or a 404."""
        wire_id = self.request.path_params[name or f"{kind}_id"]
        uid = parse_id(kind, wire_id)
        if uid is None:
            raise ApiError(404, "not_found", f"No {kind} found with id '{wire_id}'.")
        return uid

    def page(self, kind: str) -> PageQuery:
        """The pagination query (limit 1..100, default 20; order desc by default)."""
        query = self.request.query_params
        raw_limit = query.get("limit")
        limit = 20
        if raw_limit is not None:
            try:
                limit = int(raw_limit)
            except ValueError:
                limit = 0
            if not 1 <= limit <= 100:
                raise ApiError(
                    400,
                    "invalid_value",
                    f"Invalid 'limit': {raw_limit!r}. Expected an integer from 1 to 100.",
                    param="limit",
                )
        order = query.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise ApiError(
                400,
                "invalid_value",
                f"Invalid 'order': {order!r}. Supported values are: 'asc' and 'desc'.",
                param="order",
            )
        cursors: dict[str, str | None] = {}
        for param in ("after", "before"):
            value = query.get(param) or None
            if value is not None:
                uid = parse_id(kind, value)
                if uid is None:
                    raise ApiError(
                        400,
                        "invalid_value",
                        f"Invalid '{param}': {value!r} is not a {kind} id.",
                        param=param,
                    )
                value = uid
            cursors[param] = value
        return PageQuery(limit, order, cursors["after"], cursors["before"])  # type: ignore[arg-type]


Handler = Callable[[Call], Awaitable["dict[str, Any] | Response"]]


class Api:
    """Builds the routes of one dialect: each handler wrapped in auth, body and error handling."""

    def __init__(self, dialect: Dialect, auth: Authenticator, *, max_body_bytes: int) -> None:
        self.dialect = dialect
        self.auth = auth
        self.max_body_bytes = max_body_bytes

    def route(
        self,
        path: str,
        handler: Handler,
        methods: Sequence[str],
        *,
        schema: str | None = None,
        multipart: bool = False,
    ) -> Route:
        """``multipart=True``: the handler reads the body itself (``read_form``), e.g. uploads."""
        dialect = self.dialect

        async def endpoint(request: Request) -> Response:
            request_id = dialect.new_request_id()
            try:
                self.auth.check_request(request.headers)
                body: dict[str, Any] = {}
                if request.method in _BODY_METHODS and not multipart:
                    body = await self.read_body(request)
                    if schema is not None:
                        validate(schema, body)
                result = await handler(Call(request, body, request_id, dialect))
            except ApiError as exc:
                return dialect.error(self.localise(exc), request_id)
            except StoreError as exc:
                log.error("store error in %s %s: %s", request.method, request.url.path, exc)
                return dialect.error(store_error(exc), request_id)
            except ClientDisconnect:
                # The client went away before its body was read; nobody reads the answer.
                log.info("client aborted %s %s", request.method, request.url.path)
                return Response(status_code=499)
            except Exception:
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                error = ApiError(500, "server_error", "The server had an error.")
                return dialect.error(error, request_id)
            if isinstance(result, Response):
                return result
            return dialect.ok(result, request_id)

        endpoint.__name__ = handler.__name__
        return Route(path, endpoint, methods=list(methods))

    def localise(self, exc: ApiError) -> ApiError:
        """Word the errors that name objects (``NotFound``, ``ThreadBusy``) with this dialect's
        id form."""
        d = self.dialect
        if isinstance(exc, NotFound) and exc.wire_id is None:
            return NotFound(exc.kind, exc.uid, wire_id=d.id(exc.kind, exc.uid))
        if isinstance(exc, ThreadBusy):
            thread, run = d.id("thread", exc.thread_id), d.id("run", exc.run_id)
            if exc.action == "message":
                text = f"Can't add messages to {thread} while a run {run} is active."
            else:
                text = f"Thread {thread} already has an active run {run}."
            return ApiError(400, "invalid_request", text)
        return exc

    async def read_body(self, request: Request) -> dict[str, Any]:
        """The JSON object in the body; ``""``, ``null`` and an empty body mean ``{}``."""
        limit = self.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise ApiError(
                415,
                "unsupported_media_type",
                f"Unsupported content type {media_type or '(none)'!r}; send application/json.",
            )
        try:
            body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ApiError(
                400,
                "invalid_json",
                f"The request body is not valid JSON: {str(exc)[:200] or type(exc).__name__}.",
            ) from exc
        if body is None or body == "":
            return {}
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
        _check_json(body, text=b"\\u" in raw or not raw.isascii())
        return body

    async def http_exception(self, request: Request, exc: Exception) -> Response:
        """Unknown paths and methods: still authenticated, answered in the envelope."""
        request_id = self.dialect.new_request_id()
        assert isinstance(exc, HTTPException)
        try:
            self.auth.check_request(request.headers)
        except ApiError as denied:
            return self.dialect.error(denied, request_id)
        if exc.status_code == 405:
            error = ApiError(
                405,
                "method_not_allowed",
                f"Method {request.method} is not allowed on {request.url.path}.",
            )
        else:
            error = ApiError(
                exc.status_code,
                "not_found" if exc.status_code == 404 else "invalid_request",
                f"Unknown request URL: {request.method} {request.url.path}.",
            )
        return self.dialect.error(error, request_id)


def _no_constant(name: str) -> Any:
    """JSON has no NaN or Infinity; Python's parser would let them through."""
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    """A JSON number that fits a double: ``1e400`` would parse as infinity and go back out as a
    bare ``Infinity``, which is not JSON."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _check_json(body: dict[str, Any], *, text: bool) -> None:
    """Refuse what parses but cannot be kept: nesting deeper than ``MAX_JSON_DEPTH`` (the JSON
    encoder of the store or of a reply would hit Python's recursion limit) and, when ``text``,
    lone UTF-16 surrogates (``"\\ud800"``: valid JSON escapes, but not Unicode, so SQLite
    cannot store them). Walks the value with a stack, never recursion."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            items: Any = value.values()
            if text:
                for key in value:
                    _check_text(key)
        elif isinstance(value, list):
            items = value
        else:
            if text and isinstance(value, str):
                _check_text(value)
            continue
        if depth > MAX_JSON_DEPTH:
            raise ApiError(
                400,
                "invalid_json",
                f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.",
            )
        stack.extend((item, depth + 1) for item in items)


def _check_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start : exc.end].encode("unicode_escape").decode()
        raise ApiError(
            400,
            "invalid_json",
            f"The request body is not valid JSON: it holds a lone UTF-16 surrogate ({bad}).",
        ) from exc


def store_error(exc: StoreError) -> ApiError:
    """A store that cannot take a write, said plainly: full (507), read-only or busy (503), a
    colliding write (409). The store rolls the unit of work back: nothing half-written is left."""
    if isinstance(exc, StoreFull):
        return ApiError(
            507,
            "database_full",
            "The server's database is full (no space left on its disk or the size limit reached);"
            " nothing was written. Retry once space has been freed.",
        )
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", "The request conflicts with what is stored; retry it.")
    if isinstance(exc, StoreUnavailable) and exc.read_only:
        return ApiError(
            503,
            "database_read_only",
            "The server's database is read-only; nothing was written. Retry once it is writable.",
        )
    return ApiError(
        503, "database_unavailable", f"The server's database is unavailable ({exc}); retry later."
    )


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "request_too_large", f"The request body is larger than {limit} bytes.")
