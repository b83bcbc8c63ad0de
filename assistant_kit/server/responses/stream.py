"""A run's event log as the Responses API's event stream.

The log is translated from its start every time, so ``sequence_number`` is the same for an
event in every stream of the response, and a stream resumed with ``starting_after=N`` sends
exactly the events after N. The order is the one the openai SDK's ``responses.stream()`` builds
its snapshot from::

    response.created, response.in_progress,
      (message)  response.output_item.added, response.content_part.added,
                 response.output_text.delta..., response.output_text.done,
                 response.content_part.done, response.output_item.done
      (function) response.output_item.added, response.function_call_arguments.delta...,
                 response.function_call_arguments.done, response.output_item.done
    response.completed | response.incomplete | response.failed

A background response also sends ``response.queued`` after ``response.created``. A cancelled
response's stream ends after its last item without a final event (the API has none for it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import StreamingResponse

from assistant_kit.server.responses.render import Renderer
from assistant_kit.server.responses.request import wire_id
from assistant_kit.server.runs.engine import RunEngine
from assistant_kit.server.store.records import Event, MessageRecord, ResponseRecord, RunRecord

log = logging.getLogger("assistant_kit.server.responses")

JSONObject = dict[str, Any]

#: The run event that ends a response, and the Responses event that says so.
_FINAL = {
    "thread.run.completed": "response.completed",
    "thread.run.requires_action": "response.completed",
    "thread.run.incomplete": "response.incomplete",
    "thread.run.failed": "response.failed",
    "thread.run.expired": "response.failed",
}


@dataclass(slots=True)
class _Call:
    output_index: int
    item: JSONObject


@dataclass(slots=True)
class Translator:
    """Turns one response's run events into Responses events, numbering them."""

    render: Renderer
    record: ResponseRecord
    seq: int = -1
    items: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    calls: dict[tuple[str, int], _Call] = field(default_factory=dict)

    def event(self, kind: str, **fields: Any) -> JSONObject:
        self.seq += 1
        return {"type": kind, "sequence_number": self.seq, **fields}

    async def _snapshot(self, run: RunRecord, status: str | None = None) -> JSONObject:
        body = await self.render.response(run, self.record)
        if status is not None:
            body.update(status=status, output=[], output_text="", usage=None)
        return body

    async def translate(self, event: Event) -> list[JSONObject]:
        name, data = event.event, event.data
        kind = data.get("kind")
        out: list[JSONObject] = []
        if kind == "run":
            run = RunRecord(**data["record"])
            background = bool(self.record.settings.get("background"))
            if name == "thread.run.created":
                status = "queued" if background else "in_progress"
                out.append(
                    self.event("response.created", response=await self._snapshot(run, status))
                )
            elif name == "thread.run.queued" and background and run.started_at is None:
                snapshot = await self._snapshot(run, "queued")
                out.append(self.event("response.queued", response=snapshot))
            elif name == "thread.run.in_progress":
                snapshot = await self._snapshot(run, "in_progress")
                out.append(self.event("response.in_progress", response=snapshot))
            elif name in _FINAL:
                out += self._close_calls()
                out.append(self.event(_FINAL[name], response=await self._snapshot(run)))
        elif kind == "message" and name == "thread.message.created":
            message = MessageRecord(**data["record"])
            index = self.messages[message.id] = self._next_index()
            item = {**self.render.output_message(message), "status": "in_progress", "content": []}
            out.append(self.event("response.output_item.added", output_index=index, item=item))
            out.append(
                self.event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        elif kind == "message_delta" and str(data.get("id")) in self.messages:
            message_id = str(data["id"])
            self.texts[message_id] = self.texts.get(message_id, "") + str(data.get("text") or "")
            out.append(
                self.event(
                    "response.output_text.delta",
                    item_id=wire_id("message", message_id),
                    output_index=self.messages[message_id],
                    content_index=0,
                    delta=str(data.get("text") or ""),
                    logprobs=[],
                )
            )
        elif kind == "message" and name in (
            "thread.message.completed",
            "thread.message.incomplete",
        ):
            message = MessageRecord(**data["record"])
            if message.id in self.messages:
                out += self._message_done(message)
        elif kind == "step_delta":
            out += self._call_delta(data)
        return out

    def _next_index(self) -> int:
        self.items += 1
        return self.items - 1

    def _message_done(self, message: MessageRecord) -> list[JSONObject]:
        index = self.messages[message.id]
        item = self.render.output_message(message)
        part = item["content"][0] if item["content"] else {"type": "output_text", "text": ""}
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return [
            self.event("response.output_text.done", **where, text=part["text"], logprobs=[]),
            self.event("response.content_part.done", **where, part=part),
            self.event("response.output_item.done", output_index=index, item=item),
        ]

    def _call_delta(self, data: JSONObject) -> list[JSONObject]:
        key = (str(data.get("id")), int(data.get("index") or 0))
        call = data.get("call") or {}
        if data.get("first"):
            if call.get("type") != "function":
                return []  # built-in tools have their own items (not rendered yet)
            item = self.render.function_call(call, "in_progress")
            self.calls[key] = _Call(self._next_index(), item)
            return [
                self.event(
                    "response.output_item.added",
                    output_index=self.calls[key].output_index,
                    item=item,
                )
            ]
        found = self.calls.get(key)
        if found is None or not call.get("arguments"):
            return []
        found.item["arguments"] += str(call["arguments"])
        return [
            self.event(
                "response.function_call_arguments.delta",
                item_id=found.item["id"],
                output_index=found.output_index,
                delta=str(call["arguments"]),
            )
        ]

    def _close_calls(self) -> list[JSONObject]:
        out: list[JSONObject] = []
        for call in self.calls.values():
            item = {**call.item, "status": "completed"}
            out.append(
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=call.output_index,
                    arguments=item["arguments"],
                    name=item["name"],
                )
            )
            out.append(
                self.event("response.output_item.done", output_index=call.output_index, item=item)
            )
        self.calls.clear()
        return out


def frame(event: JSONObject) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def stream_body(
    engine: RunEngine, render: Renderer, record: ResponseRecord, starting_after: int
) -> AsyncIterator[bytes]:
    translator = Translator(render, record)
    try:
        async for batch in engine.event_batches(record.id, 0):
            events: list[JSONObject] = []
            for event in batch:
                if event.event == "done":
                    break
                events += await translator.translate(event)
            chunk = b"".join(frame(e) for e in events if e["sequence_number"] > starting_after)
            if chunk:
                yield chunk
    except Exception as exc:  # the run goes on; tell this reader and end its stream
        log.exception("stream of response %s failed", record.id)
        yield frame(
            translator.event("error", code="server_error", message=f"The stream failed: {exc}")
        )


def stream_response(
    engine: RunEngine, render: Renderer, record: ResponseRecord, starting_after: int = -1
) -> StreamingResponse:
    """The SSE response of a response's events after ``starting_after``."""
    return StreamingResponse(
        stream_body(engine, render, record, starting_after),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )
