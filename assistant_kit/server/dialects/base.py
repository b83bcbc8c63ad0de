"""The neutral ``Dialect``: what every wire dialect must say, and what they all say alike.

A ``Dialect`` turns neutral records (bare UUID ids, Unix-ms timestamps, step entries as the engine
stores them) into one wire's JSON, and one wire's request bodies into neutral values. Route tables,
``events.py`` and the endpoints call its methods and never ask which dialect it is; a subclass
overrides what its wire does differently. The abstract methods are the ones with no sensible
default; the rest is shared (OpenAI's Assistants v2 shapes, which DashScope mostly copies).

A neutral tool call entry of a ``tool_calls`` step (see ``store/records.py``, ``StepRecord``)::

    {"id": "call_...", "type": "function" | <built-in type>, "name": <function the model called>,
     "arguments": <JSON text>, "output": str | None, "logs": str, "images": [file ids],
     "urls": [...], "is_error": bool}
"""

from __future__ import annotations

import abc
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from starlette.responses import Response

from assistant_kit.errors import ApiError
from assistant_kit.server.knowledge.index import Hit
from assistant_kit.server.knowledge.records import (
    FileBatchRecord,
    VectorStoreFileRecord,
    VectorStoreRecord,
)
from assistant_kit.server.knowledge.vector_stores import Summary
from assistant_kit.server.services import UNSET, AssistantFields, MessageInput
from assistant_kit.server.store.records import (
    TERMINAL,
    AssistantRecord,
    FileRecord,
    MessageRecord,
    RunRecord,
    StepRecord,
    ThreadRecord,
    UploadPartRecord,
    UploadRecord,
)
from assistant_kit.server.tools.plugins import public_tools

JSONObject = dict[str, Any]

#: The ``include[]`` value that adds the text of each file_search hit to its step.
FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"

#: The assistant fields a create or update body may carry (in any dialect).
ASSISTANT_FIELDS = (
    "model",
    "name",
    "description",
    "instructions",
    "tools",
    "file_ids",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "response_format",
)


class JSONBody(Response):
    """A compact UTF-8 JSON response (no ASCII escaping, no spaces)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


def dumps(value: Any) -> str:
    """Compact JSON text, as every body and SSE ``data:`` line is written."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def code_input(arguments: str) -> str:
    """The source a code_interpreter call runs: its ``code`` (or ``input``) argument."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments
    if not isinstance(parsed, dict):
        return arguments
    code = parsed.get("code", parsed.get("input", ""))
    return code if isinstance(code, str) else ""


class Dialect(abc.ABC):
    """The wire conventions of one API flavour; one instance per dialect, chosen per mount."""

    #: A short name for logs and messages (never compared: behaviour lives in methods).
    name: ClassVar[str]
    #: The wire prefix of each kind of id (``ids.ACCEPTED`` accepts all of them on input).
    prefixes: ClassVar[Mapping[str, str]] = {
        "assistant": "asst_",
        "thread": "thread_",
        "message": "msg_",
        "run": "run_",
        "step": "step_",
        "file": "file-",
        "vector_store": "vs_",
        "file_batch": "vsfb_",
        "upload": "upload_",
        "part": "part_",
        #: A response of the Responses API (``routes/responses.py``): the id of its run.
        "response": "resp_",
    }
    #: The media type of a run's event stream.
    sse_media_type: ClassVar[str] = "text/event-stream"

    # -- ids, clocks, envelope -----------------------------------------------------------------

    def new_request_id(self) -> str:
        return str(uuid.uuid4())

    @abc.abstractmethod
    def ts(self, ms: int | None) -> int | None:
        """A stored ms timestamp in this dialect's unit."""

    def id(self, kind: str, uid: str | None) -> str | None:
        """A stored id in this dialect's form (``None`` stays ``None``)."""
        return None if uid is None else self.prefixes[kind] + uid

    def headers(self, request_id: str) -> dict[str, str]:
        return {"x-request-id": request_id}

    @abc.abstractmethod
    def ok(self, body: JSONObject, request_id: str, status: int = 200) -> Response:
        """A success response carrying ``body``."""

    @abc.abstractmethod
    def error_body(self, exc: ApiError, request_id: str) -> JSONObject:
        """The JSON of an error response."""

    def error(self, exc: ApiError, request_id: str) -> Response:
        return JSONBody(
            self.error_body(exc, request_id),
            status_code=exc.status or 500,
            headers=self.headers(request_id),
        )

    def list_body(self, data: Sequence[JSONObject], has_more: bool) -> JSONObject:
        return {
            "object": "list",
            "data": list(data),
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }

    def deleted(self, kind: str, object_name: str, uid: str) -> JSONObject:
        return {"id": self.id(kind, uid), "object": object_name, "deleted": True}

    # -- request bodies --------------------------------------------------------------------

    def assistant_fields(self, body: JSONObject, update: bool) -> AssistantFields:
        """The body's assistant fields; ``metadata: null`` leaves metadata unchanged."""
        return AssistantFields(**given_assistant_fields(body))

    def message_input(self, body: Mapping[str, Any]) -> MessageInput:
        """A message create body (or an entry of a thread's ``messages``)."""
        return MessageInput(
            content=body["content"],
            role=body.get("role") or "user",
            file_ids=body.get("file_ids") or (),
            attachments=body.get("attachments") or (),
            metadata=body.get("metadata") or {},
        )

    def update_metadata(self, body: JSONObject) -> Any:
        """``metadata`` as an update gives it; absent or ``null`` is ``UNSET`` (unchanged)."""
        value = body.get("metadata", UNSET)
        return UNSET if value is None else value

    # -- objects -----------------------------------------------------------------------------

    @abc.abstractmethod
    def assistant(self, a: AssistantRecord) -> JSONObject: ...

    @abc.abstractmethod
    def thread(self, t: ThreadRecord) -> JSONObject: ...

    @abc.abstractmethod
    def message(self, m: MessageRecord) -> JSONObject: ...

    @abc.abstractmethod
    def file(self, f: FileRecord, content_url: str) -> JSONObject:
        """A stored file's metadata as ``GET /files/{id}`` answers it."""

    def usage(self, usage: Mapping[str, int] | None) -> JSONObject | None:
        if usage is None:
            return None
        prompt = int(usage.get("prompt_tokens", 0))
        completion = int(usage.get("completion_tokens", 0))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def required_action(self, run: RunRecord) -> JSONObject | None:
        if run.status != "requires_action" or not run.required_action:
            return None
        calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in run.required_action.get("tool_calls", [])
        ]
        return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}

    def run(self, run: RunRecord) -> JSONObject:
        """A run; subclasses add their own fields to this shared part."""
        return {
            "id": self.id("run", run.id),
            "object": "thread.run",
            "created_at": self.ts(run.created_at),
            "thread_id": self.id("thread", run.thread_id),
            "assistant_id": self.id("assistant", run.assistant_id),
            "status": run.status,
            "required_action": self.required_action(run),
            "last_error": run.last_error,
            "incomplete_details": run.incomplete_details,
            "started_at": self.ts(run.started_at),
            "expires_at": None if run.status in TERMINAL else self.ts(run.expires_at),
            "cancelled_at": self.ts(run.cancelled_at),
            "failed_at": self.ts(run.failed_at),
            "completed_at": self.ts(run.completed_at),
            "model": run.model,
            "instructions": run.instructions,
            "tools": public_tools(run.tools),
            "metadata": run.metadata,
            "usage": self.usage(run.usage),
            "temperature": run.temperature,
            "top_p": run.top_p,
            "max_prompt_tokens": run.max_prompt_tokens,
            "max_completion_tokens": run.max_completion_tokens,
            "tool_choice": run.tool_choice if run.tool_choice is not None else "auto",
            "parallel_tool_calls": bool(run.parallel_tool_calls),
            "response_format": run.response_format if run.response_format is not None else "auto",
        }

    def step(self, step: StepRecord, include: Sequence[str] = ()) -> JSONObject:
        """A run step; ``include`` lists OpenAI's ``include[]`` values (file_search contents)."""
        return {
            "id": self.id("step", step.id),
            "object": "thread.run.step",
            "created_at": self.ts(step.created_at),
            "run_id": self.id("run", step.run_id),
            "assistant_id": self.id("assistant", step.assistant_id),
            "thread_id": self.id("thread", step.thread_id),
            "type": step.type,
            "status": step.status,
            "cancelled_at": self.ts(step.cancelled_at),
            "completed_at": self.ts(step.completed_at),
            "expired_at": self.ts(step.expired_at),
            "failed_at": self.ts(step.failed_at),
            "last_error": step.last_error,
            "step_details": self.step_details(step.step_details, include),
            "usage": self.usage(step.usage),
            "metadata": step.metadata,
        }

    def step_details(self, details: Mapping[str, Any], include: Sequence[str] = ()) -> JSONObject:
        if details.get("type") == "message_creation":
            message_id = details.get("message_creation", {}).get("message_id")
            return {
                "type": "message_creation",
                "message_creation": {"message_id": self.id("message", message_id)},
            }
        return {
            "type": "tool_calls",
            "tool_calls": [self.tool_call(c, include) for c in details.get("tool_calls", [])],
        }

    def tool_call(self, call: Mapping[str, Any], include: Sequence[str] = ()) -> JSONObject:
        """A neutral tool call entry (see the module docstring) as a step's ``tool_calls`` item;
        ``output`` is None while the call runs."""
        kind = call.get("type", "function")
        if kind == "file_search":
            body = self.file_search_call(call, FILE_SEARCH_CONTENT in include)
            return {"id": call["id"], "type": "file_search", "file_search": body}
        if kind == "code_interpreter":
            body = self.code_interpreter_call(call)
            return {"id": call["id"], "type": "code_interpreter", "code_interpreter": body}
        if kind == "function" or not self.shows_builtin_type(kind):
            function = {
                "name": call.get("name", ""),
                "arguments": call.get("arguments", ""),
                "output": call.get("output"),
            }
            return {"id": call["id"], "type": "function", "function": function}
        body = {"arguments": call.get("arguments", ""), "output": call.get("output")}
        return {"id": call["id"], "type": kind, kind: body}

    def file_search_call(self, call: Mapping[str, Any], with_content: bool) -> JSONObject:
        """The ``file_search`` object of a file_search call: its hits (``results`` entries of
        the neutral call), their text only when asked for."""
        results = []
        for r in call.get("results") or ():
            result: JSONObject = {
                "file_id": self.id("file", r["file_id"]),
                "file_name": r["filename"],
                "score": r["score"],
            }
            if with_content:
                result["content"] = [{"type": "text", "text": r["text"]}]
            results.append(result)
        ranking = {"ranker": "default_2024_08_21", "score_threshold": 0.0}
        return {"ranking_options": ranking, "results": results}

    @abc.abstractmethod
    def code_interpreter_call(self, call: Mapping[str, Any]) -> JSONObject:
        """The ``code_interpreter`` object of a code_interpreter call."""

    @abc.abstractmethod
    def shows_builtin_type(self, kind: str) -> bool:
        """Whether a built-in call of type ``kind`` (other than code_interpreter) keeps its own
        type on this wire; if not it is shown as the function the model called."""

    def tool_call_start(self, call: Mapping[str, Any]) -> JSONObject:
        """The first fragment of a call in a step delta (no arguments yet)."""
        kind = call.get("type", "function")
        if kind == "code_interpreter":
            return {"type": kind, kind: {"input": "", "outputs": []}}
        if kind == "file_search":
            return {"type": kind, kind: {}}
        if kind == "function" or not self.shows_builtin_type(kind):
            function = {"name": call.get("name", ""), "arguments": "", "output": None}
            return {"type": "function", "function": function}
        return {"type": kind, kind: {"arguments": "", "output": None}}

    def step_delta(self, data: Mapping[str, Any]) -> JSONObject:
        """A tool-call fragment: id, type and name only in the first one of each call."""
        call = data["call"]
        entry: JSONObject = {"index": data["index"]}
        if data.get("first"):
            entry["id"] = call["id"]
            entry.update(self.tool_call_start(call))
        else:
            entry.update(type="function", function={"arguments": call.get("arguments", "")})
        return {
            "id": self.id("step", data["id"]),
            "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [entry]}},
        }

    @abc.abstractmethod
    def message_delta(self, data: Mapping[str, Any]) -> JSONObject:
        """A text fragment of a reply: ``data`` has the message ``id``, ``text`` and ``first``."""

    # -- uploads in parts (OpenAI's Uploads API) ---------------------------------------------

    def upload(self, upload: UploadRecord, file: JSONObject | None) -> JSONObject:
        return {
            "id": self.id("upload", upload.id),
            "object": "upload",
            "bytes": upload.bytes,
            "created_at": self.ts(upload.created_at),
            "expires_at": self.ts(upload.expires_at),
            "filename": upload.filename,
            "purpose": upload.purpose,
            "status": upload.status,
            "file": file,
        }

    def upload_part(self, part: UploadPartRecord) -> JSONObject:
        return {
            "id": self.id("part", part.id),
            "object": "upload.part",
            "created_at": self.ts(part.created_at),
            "upload_id": self.id("upload", part.upload_id),
        }

    # -- DashScope's file listing and uploads (only its mount serves them) -------------------

    def uploaded_files(self, files: Sequence[FileRecord]) -> JSONObject:
        """What ``Files.upload`` answers (its ``output``)."""
        uploaded = [{"file_id": self.id("file", f.id), "name": f.filename} for f in files]
        return {"data": {"uploaded_files": uploaded, "failed_uploads": []}}

    def file_page(
        self, items: Sequence[JSONObject], page_no: int, page_size: int, total: int
    ) -> JSONObject:
        """What ``Files.list(page_no, page_size)`` answers: each item a ``file()`` body."""
        files = [item.get("data", item) for item in items]
        return {
            "data": {"total": total, "page_no": page_no, "page_size": page_size, "files": files}
        }

    # -- vector stores (OpenAI's shapes; only mounts whose wire has them serve them) -------

    def vector_store(self, vs: VectorStoreRecord, summary: Summary, status: str) -> JSONObject:
        return {
            "id": self.id("vector_store", vs.id),
            "object": "vector_store",
            "created_at": self.ts(vs.created_at),
            "name": vs.name or "",
            "usage_bytes": summary.usage_bytes,
            "file_counts": summary.file_counts(),
            "status": status,
            "expires_after": vs.expires_after,
            "expires_at": self.ts(vs.expires_at),
            "last_active_at": self.ts(vs.last_active_at),
            "metadata": vs.metadata,
        }

    def vector_store_file(self, link: VectorStoreFileRecord) -> JSONObject:
        return {
            "id": self.id("file", link.file_id),
            "object": "vector_store.file",
            "created_at": self.ts(link.created_at),
            "vector_store_id": self.id("vector_store", link.vector_store_id),
            "status": link.status,
            "usage_bytes": link.usage_bytes,
            "last_error": link.last_error,
            "chunking_strategy": link.chunking_strategy,
            "attributes": link.attributes,
        }

    def file_batch(self, batch: FileBatchRecord, summary: Summary, status: str) -> JSONObject:
        return {
            "id": self.id("file_batch", batch.id),
            "object": "vector_store.files_batch",
            "created_at": self.ts(batch.created_at),
            "vector_store_id": self.id("vector_store", batch.vector_store_id),
            "status": status,
            "file_counts": summary.file_counts(),
        }

    def search_results(self, queries: Sequence[str], hits: Sequence[Hit]) -> JSONObject:
        data = [
            {
                "file_id": self.id("file", h.file_id),
                "filename": h.filename,
                "score": round(h.score, 6),
                "attributes": dict(h.attributes),
                "content": [{"type": "text", "text": h.chunk.text}],
            }
            for h in hits
        ]
        return {
            "object": "vector_store.search_results.page",
            "search_query": list(queries),
            "data": data,
            "has_more": False,
            "next_page": None,
        }

    def chunk_page(self, texts: Sequence[str]) -> JSONObject:
        """A vector store file's parsed content (``GET .../files/{id}/content``)."""
        data = [{"type": "text", "text": t} for t in texts]
        return {
            "object": "vector_store.file_content.page",
            "data": data,
            "has_more": False,
            "next_page": None,
        }

    # -- event streams -------------------------------------------------------------------------

    def sse_headers(self, request_id: str) -> dict[str, str]:
        return {**self.headers(request_id), "cache-control": "no-cache"}

    @abc.abstractmethod
    def frame(self, name: str, data: Any, request_id: str) -> bytes:
        """One SSE event; ``name == "done"`` is the stream's last event."""

    @abc.abstractmethod
    def error_frame(self, message: str, request_id: str) -> bytes:
        """The SSE event telling a reader that its stream failed."""


def given_assistant_fields(body: Mapping[str, Any]) -> JSONObject:
    """The assistant fields present in ``body``; ``metadata: null`` means unchanged."""
    given = {k: body[k] for k in ASSISTANT_FIELDS if k in body}
    if given.get("metadata", UNSET) is None:
        del given["metadata"]
    return given
