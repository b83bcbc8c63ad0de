"""DashScope's Assistant API, as the ``dashscope`` 2.0.2 SDK reads it (mounted under ``/api/v1``).

Milliseconds for timestamps, ``message_`` and ``file_`` ids, 200 on every success with
``request_id`` in the body, ``{code, message, request_id}`` errors. Bodies as the SDK sends them:
``""`` on thread create, ``metadata: null`` and ``file_ids: []`` meaning "unchanged" on updates.
``usage`` carries both ``input/output_tokens`` and ``prompt/completion_tokens``; built-in calls keep
their type (``{type: T, T: {arguments, output}}``) and a code_interpreter call never has a
non-empty ``outputs`` (the SDK builds a ``Union`` from each item and crashes): its text goes in
``output`` and its image ids in ``file_ids``, keys the SDK keeps as plain attributes. SSE:
``event:NAME`` / ``data:JSON`` with no space (the SDK compares the raw text of ``done`` and
``error``), ``request_id`` in every object, ``status:`` on errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
from assistant_kit.server.services import UNSET, AssistantFields
from assistant_kit.server.store.records import (
    AssistantRecord,
    FileRecord,
    MessageRecord,
    RunRecord,
    ThreadRecord,
)
from assistant_kit.server.tools.plugins import public_tools

#: DashScope error codes by HTTP status (the cloud's own names where known).
_CODES = {
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
    prefixes: ClassVar[Mapping[str, str]] = {
        **Dialect.prefixes,
        "message": "message_",
        "file": "file_",
    }
    sse_media_type = "text/event-stream;charset=UTF-8"

    def ts(self, ms: int | None) -> int | None:
        return ms

    def ok(self, body: JSONObject, request_id: str, status: int = 200) -> Response:
        body["request_id"] = request_id
        return JSONBody(body, status_code=status, headers=self.headers(request_id))

    def error_body(self, exc: ApiError, request_id: str) -> JSONObject:
        code = _CODES.get(exc.status, "InternalError")
        return {"code": code, "message": exc.message, "request_id": request_id}

    def assistant_fields(self, body: JSONObject, update: bool) -> AssistantFields:
        """On update the SDK always sends ``file_ids``; ``[]`` (or null) means unchanged."""
        given = given_assistant_fields(body)
        if update and given.get("file_ids", UNSET) in ([], None):
            del given["file_ids"]
        return AssistantFields(**given)

    def assistant(self, a: AssistantRecord) -> JSONObject:
        return {
            "id": self.id("assistant", a.id),
            "object": "assistant",
            "created_at": a.created_at,
            "model": a.model,
            "name": a.name,
            "description": a.description,
            "instructions": a.instructions,
            "tools": public_tools(a.tools),
            "file_ids": a.file_ids,
            "metadata": a.metadata,
            "temperature": a.temperature,
            "top_p": a.top_p,
            "top_k": a.top_k,
            "max_tokens": a.max_tokens,
        }

    def thread(self, t: ThreadRecord) -> JSONObject:
        return {
            "id": self.id("thread", t.id),
            "object": "thread",
            "created_at": t.created_at,
            "metadata": t.metadata,
        }

    def message(self, m: MessageRecord) -> JSONObject:
        file_ids = m.file_ids or [a["file_id"] for a in m.attachments if "file_id" in a]
        return {
            "id": self.id("message", m.id),
            "object": "thread.message",
            "created_at": m.created_at,
            "thread_id": self.id("thread", m.thread_id),
            "assistant_id": self.id("assistant", m.assistant_id) or "",
            "run_id": self.id("run", m.run_id) or "",
            "role": m.role,
            "content": [_content_part(p) for p in m.content],
            "file_ids": file_ids,
            "metadata": m.metadata,
            "status": m.status,
            "incomplete_details": m.incomplete_details,
            "completed_at": m.completed_at,
            "incomplete_at": m.incomplete_at,
        }

    def file(self, f: FileRecord, content_url: str) -> JSONObject:
        """Read non-flattened by the SDK's ``Files.get``: the file sits under ``data``, and
        ``url`` is the content route."""
        return {
            "data": {
                "file_id": self.id("file", f.id),
                "name": f.filename,
                "description": "",
                "size": f.bytes,
                "content_type": f.mime_type,
                "purpose": f.purpose,
                "created_at": self.ts(f.created_at),
                "url": content_url,
            }
        }

    def usage(self, usage: Mapping[str, int] | None) -> JSONObject | None:
        body = super().usage(usage)
        if body is not None:
            body.update(input_tokens=body["prompt_tokens"], output_tokens=body["completion_tokens"])
        return body

    def run(self, run: RunRecord) -> JSONObject:
        body = super().run(run)
        body.update(
            file_ids=run.file_ids,
            top_k=run.top_k,
            max_tokens=run.max_tokens,
            truncation_strategy=run.truncation_strategy,
            additional_instructions=run.additional_instructions,
        )
        if run.status == "incomplete":
            # dashscope 2.0.2's Runs.wait stops only on the statuses it knows, and `incomplete`
            # is not one: say `completed` (the run did end, with a reply), keep the reason
            body.update(status="completed", completed_at=self.ts(run.incomplete_at))
        return body

    def shows_builtin_type(self, kind: str) -> bool:
        return True

    def code_interpreter_call(self, call: Mapping[str, Any]) -> JSONObject:
        body: JSONObject = {"input": code_input(call.get("arguments", "")), "outputs": []}
        if call.get("output") is not None:
            body["output"] = call["output"]
            body["file_ids"] = list(call.get("images", []))
        return body

    def message_delta(self, data: Mapping[str, Any]) -> JSONObject:
        """Every delta has ``role``, one text part with ``annotations``, and ``file_ids``."""
        text = {"value": data["text"], "annotations": []}
        return {
            "id": self.id("message", data["id"]),
            "object": "thread.message.delta",
            "delta": {
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
                "file_ids": [],
            },
        }

    def frame(self, name: str, data: Any, request_id: str) -> bytes:
        if name == "done":
            return b"event:done\ndata:[DONE]\n\n"
        if isinstance(data, dict):
            data = {**data, "request_id": request_id}
        if name == "thread.run.incomplete":  # the run says `completed` here (``run``)
            name = "thread.run.completed"
        return f"event:{name}\ndata:{dumps(data)}\n\n".encode()

    def error_frame(self, message: str, request_id: str) -> bytes:
        flat = {"code": "InternalError", "message": message, "request_id": request_id}
        return f"event:error\nstatus:500\ndata:{dumps(flat)}\n\n".encode()


def _content_part(part: dict[str, Any]) -> dict[str, Any]:
    """dashscope 2.0.2's ``ImageFile`` drops its ``file_id``: repeat it on the part, where the
    SDK's ``MessageContentImageFile`` keeps it (``part.file_id``)."""
    if part.get("type") != "image_file" or not isinstance(part.get("image_file"), dict):
        return part
    return {**part, "file_id": part["image_file"].get("file_id")}
