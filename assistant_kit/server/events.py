"""The persisted run event log as Server-Sent Events, per dialect.

A stream is a reader of the log: it starts after a position (0 for a new run, the log's end
before a tool-output submission) and ends after the next ``done`` entry, which the engine writes
in the same transaction as the status that ends a stream (``requires_action`` or terminal), so the
stored run is final before the stream closes. A reader that connects late still gets every event;
a client that goes away only stops its reader, never the run.

Each event is rendered (``Dialect.run``, ``.step``, ``.message_delta``...) and framed
(``Dialect.frame``, ``.error_frame``) by the stream's dialect; see ``dialects/``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.responses import StreamingResponse

from assistant_kit.server.dialects.base import Dialect
from assistant_kit.server.store.records import (
    Event,
    MessageRecord,
    RunRecord,
    StepRecord,
    ThreadRecord,
)

if TYPE_CHECKING:
    from assistant_kit.server.runs.engine import RunEngine
    from assistant_kit.server.streams import StreamControl

log = logging.getLogger("assistant_kit.server.events")


def event_object(dialect: Dialect, event: Event) -> dict[str, Any]:
    """The JSON object an event carries in ``dialect``."""
    data = event.data
    kind = data.get("kind")
    if kind == "run":
        return dialect.run(RunRecord(**data["record"]))
    if kind == "step":
        return dialect.step(StepRecord(**data["record"]))
    if kind == "message":
        return dialect.message(MessageRecord(**data["record"]))
    if kind == "thread":
        return dialect.thread(ThreadRecord(**data["record"]))
    if kind == "message_delta":
        return dialect.message_delta(data)
    if kind == "step_delta":
        return dialect.step_delta(data)
    raise ValueError(f"unknown event kind {kind!r}")


async def sse_body(
    dialect: Dialect, engine: RunEngine, run_id: str, after: int, request_id: str
) -> AsyncIterator[bytes]:
    try:
        async for batch in engine.event_batches(run_id, after):
            yield b"".join(
                dialect.frame("done", None, request_id)
                if event.event == "done"
                else dialect.frame(event.event, event_object(dialect, event), request_id)
                for event in batch
            )
    except Exception as exc:  # the run goes on; tell this reader and end its stream
        log.exception("stream of run %s failed", run_id)
        yield dialect.error_frame(f"The stream failed: {exc}", request_id)
        yield dialect.frame("done", None, request_id)


def _going_away(dialect: Dialect, request_id: str) -> bytes:
    message = (
        "The server is shutting down; the run is kept and goes on when the server is back: "
        "retrieve the run then."
    )
    return dialect.error_frame(message, request_id) + dialect.frame("done", None, request_id)


def sse_response(
    dialect: Dialect,
    engine: RunEngine,
    run_id: str,
    after: int,
    request_id: str,
    streams: StreamControl | None = None,
) -> StreamingResponse:
    """The streaming HTTP response of a run's events after ``after`` (kept alive and ended on a
    drain by ``streams``)."""
    # X-Accel-Buffering: nginx passes each event on at once instead of buffering the response
    headers = {**dialect.sse_headers(request_id), "x-accel-buffering": "no"}
    body = sse_body(dialect, engine, run_id, after, request_id)
    if streams is not None:
        body = streams.wrap(body, final=lambda: _going_away(dialect, request_id))
    return StreamingResponse(
        body,
        media_type=dialect.sse_media_type,
        headers=headers,
    )
