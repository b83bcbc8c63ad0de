"""The persisted run event log as Server-Sent Events, per dialect.

A stream is a reader of the log: it starts after a position (0 for a new run, the log's end
before a tool-output submission) and ends after the next ``done`` entry, which the engine writes
in the same transaction as the status that ends a stream (``requires_action`` or terminal), so the
stored run is final before the stream closes. A reader that connects late still gets every event;
a client that goes away only stops its reader, never the run.

Framing: OpenAI ``event: NAME`` / ``data: JSON``; DashScope ``event:NAME`` / ``data:JSON`` with no
space (the SDK compares the raw text of ``done`` and ``error``), ``request_id`` in every object,
``status:`` on errors. Both end with ``done`` / ``[DONE]``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.responses import StreamingResponse

from assistant_kit.server.envelopes import DASHSCOPE, Dialect
from assistant_kit.server.routes import dashscope as ds_routes
from assistant_kit.server.routes import openai as oa_routes
from assistant_kit.server.store.records import (
    Event,
    MessageRecord,
    RunRecord,
    StepRecord,
    ThreadRecord,
)
from assistant_kit.server.views import message_delta, run_object, step_delta, step_object

if TYPE_CHECKING:
    from assistant_kit.server.runs.engine import RunEngine

log = logging.getLogger("assistant_kit.server.events")


def event_object(dialect: Dialect, event: Event) -> dict[str, Any]:
    """The JSON object an event carries in ``dialect``."""
    data = event.data
    kind = data.get("kind")
    message_object = ds_routes.message_object if dialect is DASHSCOPE else oa_routes.message_object
    thread_object = ds_routes.thread_object if dialect is DASHSCOPE else oa_routes.thread_object
    if kind == "run":
        return run_object(dialect, RunRecord(**data["record"]))
    if kind == "step":
        return step_object(dialect, StepRecord(**data["record"]))
    if kind == "message":
        return message_object(MessageRecord(**data["record"]))
    if kind == "thread":
        return thread_object(ThreadRecord(**data["record"]))
    if kind == "message_delta":
        return message_delta(dialect, data)
    if kind == "step_delta":
        return step_delta(dialect, data)
    raise ValueError(f"unknown event kind {kind!r}")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def frame(dialect: Dialect, name: str, data: Any, request_id: str) -> bytes:
    """One SSE event in ``dialect``'s framing."""
    if dialect is DASHSCOPE:
        if name == "done":
            return b"event:done\ndata:[DONE]\n\n"
        if isinstance(data, dict):
            data = {**data, "request_id": request_id}
        return f"event:{name}\ndata:{_dumps(data)}\n\n".encode()
    if name == "done":
        return b"event: done\ndata: [DONE]\n\n"
    return f"event: {name}\ndata: {_dumps(data)}\n\n".encode()


def error_frame(dialect: Dialect, message: str, request_id: str) -> bytes:
    if dialect is DASHSCOPE:
        flat = {"code": "InternalError", "message": message, "request_id": request_id}
        return f"event:error\nstatus:500\ndata:{_dumps(flat)}\n\n".encode()
    body: dict[str, Any] = {
        "error": {"message": message, "type": "server_error", "param": None, "code": None}
    }
    return f"event: error\ndata: {_dumps(body)}\n\n".encode()


async def sse_body(
    dialect: Dialect, engine: RunEngine, run_id: str, after: int, request_id: str
) -> AsyncIterator[bytes]:
    try:
        async for batch in engine.event_batches(run_id, after):
            yield b"".join(
                frame(dialect, "done", None, request_id)
                if event.event == "done"
                else frame(dialect, event.event, event_object(dialect, event), request_id)
                for event in batch
            )
    except Exception as exc:  # the run goes on; tell this reader and end its stream
        log.exception("stream of run %s failed", run_id)
        yield error_frame(dialect, f"The stream failed: {exc}", request_id)
        yield frame(dialect, "done", None, request_id)


def sse_response(
    dialect: Dialect, engine: RunEngine, run_id: str, after: int, request_id: str
) -> StreamingResponse:
    """The streaming HTTP response of a run's events after ``after``."""
    headers = {**dialect.headers(request_id), "cache-control": "no-cache"}
    media_type = "text/event-stream;charset=UTF-8" if dialect is DASHSCOPE else "text/event-stream"
    return StreamingResponse(
        sse_body(dialect, engine, run_id, after, request_id),
        media_type=media_type,
        headers=headers,
    )
