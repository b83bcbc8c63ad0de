"""OpenAI's Assistants v2, as the ``openai`` SDK reads it (mounted under ``/v1``).

Seconds for timestamps, ``msg_`` and ``file-`` ids, the bare object as the body with an
``x-request-id`` header, ``{"error": {message, type, param, code}}`` errors. Runs echo
``truncation_strategy`` as ``{"type": "auto"}`` when unset. Step types know only function,
code_interpreter and file_search, so other built-in calls show as the function the model called;
a code_interpreter call carries its logs and images in ``outputs``. SSE: ``event: NAME`` /
``data: JSON``, ending with ``event: done`` / ``data: [DONE]``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from assistant_kit.errors import ApiError
from assistant_kit.server.dialects.base import (
    Dialect,
    JSONBody,
    JSONObject,
    code_input,
    dumps,
    given_assistant_fields,
)
from assistant_kit.server.services import AssistantFields
from assistant_kit.server.store.records import (
    AssistantRecord,
    FileRecord,
    MessageRecord,
    RunRecord,
    ThreadRecord,
)
from assistant_kit.server.tools.plugins import public_tools

#: ApiError codes OpenAI sends as ``code: null`` (its ``type`` says enough).
_NULL_CODES = ("not_found", "server_error", "invalid_request")


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

    def ok(self, body: JSONObject, request_id: str, status: int = 200) -> Response:
        return JSONBody(body, status_code=status, headers=self.headers(request_id))

    def error_body(self, exc: ApiError, request_id: str) -> JSONObject:
        kind = "server_error" if exc.status >= 500 else "invalid_request_error"
        code = None if exc.code in _NULL_CODES else exc.code
        return {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": code}}

    def assistant_fields(self, body: JSONObject, update: bool) -> AssistantFields:
        """``response_format: "auto"`` is stored as unset (and shown as ``"auto"`` again)."""
        given = given_assistant_fields(body)
        if given.get("response_format") == "auto":
            given["response_format"] = None
        return AssistantFields(**given)

    def assistant(self, a: AssistantRecord) -> JSONObject:
        return {
            "id": self.id("assistant", a.id),
            "object": "assistant",
            "created_at": self.ts(a.created_at),
            "name": a.name,
            "description": a.description,
            "model": a.model,
            "instructions": a.instructions,
            "tools": public_tools(a.tools),
            "tool_resources": a.tool_resources,
            "metadata": a.metadata,
            "temperature": a.temperature,
            "top_p": a.top_p,
            "response_format": a.response_format if a.response_format is not None else "auto",
        }

    def thread(self, t: ThreadRecord) -> JSONObject:
        return {
            "id": self.id("thread", t.id),
            "object": "thread",
            "created_at": self.ts(t.created_at),
            "metadata": t.metadata,
            "tool_resources": t.tool_resources,
        }

    def message(self, m: MessageRecord) -> JSONObject:
        attachments = m.attachments or [
            {"file_id": f, "tools": [{"type": "file_search"}]} for f in m.file_ids
        ]
        return {
            "id": self.id("message", m.id),
            "object": "thread.message",
            "created_at": self.ts(m.created_at),
            "thread_id": self.id("thread", m.thread_id),
            "status": m.status,
            "incomplete_details": m.incomplete_details,
            "completed_at": self.ts(m.completed_at),
            "incomplete_at": self.ts(m.incomplete_at),
            "role": m.role,
            "content": m.content,
            "assistant_id": self.id("assistant", m.assistant_id),
            "run_id": self.id("run", m.run_id),
            "attachments": attachments,
            "metadata": m.metadata,
        }

    def file(self, f: FileRecord, content_url: str) -> JSONObject:
        return {
            "id": self.id("file", f.id),
            "object": "file",
            "bytes": f.bytes,
            "created_at": self.ts(f.created_at),
            "filename": f.filename,
            "purpose": f.purpose,
            "status": "processed",
            "expires_at": self.ts(f.expires_at),
            "status_details": None,
        }

    def run(self, run: RunRecord) -> JSONObject:
        body = super().run(run)
        body["truncation_strategy"] = run.truncation_strategy or {
            "type": "auto",
            "last_messages": None,
        }
        return body

    def shows_builtin_type(self, kind: str) -> bool:
        return False

    def code_interpreter_call(self, call: Mapping[str, Any]) -> JSONObject:
        outputs: list[JSONObject] = []
        if call.get("output") is not None:
            if call.get("logs"):
                outputs.append({"type": "logs", "logs": call["logs"]})
            outputs += [{"type": "image", "image": {"file_id": f}} for f in call.get("images", [])]
        return {"input": code_input(call.get("arguments", "")), "outputs": outputs}

    def message_delta(self, data: Mapping[str, Any]) -> JSONObject:
        text: JSONObject = {"value": data["text"]}
        if data.get("first"):
            text["annotations"] = []
        return {
            "id": self.id("message", data["id"]),
            "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": text}]},
        }

    def frame(self, name: str, data: Any, request_id: str) -> bytes:
        if name == "done":
            return b"event: done\ndata: [DONE]\n\n"
        return f"event: {name}\ndata: {dumps(data)}\n\n".encode()

    def error_frame(self, message: str, request_id: str) -> bytes:
        body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
        return f"event: error\ndata: {dumps(body)}\n\n".encode()
