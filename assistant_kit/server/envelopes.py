"""What each wire dialect puts around an object: success bodies, lists, errors, headers.

DashScope answers 200 with the flat object plus ``request_id``, and errors as
``{code, message, request_id}``; timestamps are ms and messages are ``message_...``. OpenAI answers
the bare object with an ``x-request-id`` header, and errors as
``{"error": {message, type, param, code}}``; timestamps are seconds and messages are ``msg_...``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from starlette.responses import Response

from assistant_kit.errors import ApiError
from assistant_kit.server.ids import render_id


class JSONBody(Response):
    """A compact UTF-8 JSON response (no ASCII escaping, no spaces)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


class Dialect:
    """The wire conventions of one API flavour; one instance per dialect."""

    name: ClassVar[str]

    def new_request_id(self) -> str:
        return str(uuid.uuid4())

    def ts(self, ms: int | None) -> int | None:
        """A stored ms timestamp in this dialect's unit."""
        raise NotImplementedError

    def id(self, kind: str, uid: str | None) -> str | None:
        """A stored id in this dialect's form."""
        return render_id(kind, uid, self.name)

    def ok(self, body: dict[str, Any], request_id: str, status: int = 200) -> Response:
        raise NotImplementedError

    def error_body(self, exc: ApiError, request_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def error(self, exc: ApiError, request_id: str) -> Response:
        return JSONBody(
            self.error_body(exc, request_id),
            status_code=exc.status or 500,
            headers=self.headers(request_id),
        )

    def headers(self, request_id: str) -> dict[str, str]:
        return {"x-request-id": request_id}

    def list_body(self, data: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
        return {
            "object": "list",
            "data": list(data),
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }


#: DashScope error codes by HTTP status (the cloud's own names where known).
_DASHSCOPE_CODES = {
    400: "InvalidParameter",
    401: "InvalidApiKey",
    403: "AccessDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "RequestTooLarge",
    415: "UnsupportedMediaType",
    429: "Throttling",
    503: "ServiceUnavailable",
    507: "InsufficientStorage",
}


class DashScope(Dialect):
    name = "dashscope"

    def ts(self, ms: int | None) -> int | None:
        return ms

    def ok(self, body: dict[str, Any], request_id: str, status: int = 200) -> Response:
        body["request_id"] = request_id
        return JSONBody(body, status_code=status, headers=self.headers(request_id))

    def error_body(self, exc: ApiError, request_id: str) -> dict[str, Any]:
        code = _DASHSCOPE_CODES.get(exc.status, "InternalError")
        return {"code": code, "message": exc.message, "request_id": request_id}


class OpenAI(Dialect):
    name = "openai"

    #: Tells the SDK's poll helpers how long to sleep between GETs.
    poll_after_ms = "25"

    def new_request_id(self) -> str:
        return "req_" + uuid.uuid4().hex

    def ts(self, ms: int | None) -> int | None:
        return None if ms is None else ms // 1000

    def headers(self, request_id: str) -> dict[str, str]:
        return {"x-request-id": request_id, "openai-poll-after-ms": self.poll_after_ms}

    def ok(self, body: dict[str, Any], request_id: str, status: int = 200) -> Response:
        return JSONBody(body, status_code=status, headers=self.headers(request_id))

    def error_body(self, exc: ApiError, request_id: str) -> dict[str, Any]:
        kind = "server_error" if exc.status >= 500 else "invalid_request_error"
        code = None if exc.code in ("not_found", "server_error", "invalid_request") else exc.code
        return {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": code}}


DASHSCOPE = DashScope()
OPENAI = OpenAI()
