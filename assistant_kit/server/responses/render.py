"""Runs, their steps and messages rendered as Responses API objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant_kit.server.responses.request import bad, wire_id
from assistant_kit.server.store.base import Store
from assistant_kit.server.store.records import MessageRecord, ResponseRecord, RunRecord

JSONObject = dict[str, Any]

#: Run status -> response status (a run waiting for tool outputs is a completed response).
_STATUS = {
    "queued": "queued",
    "in_progress": "in_progress",
    "requires_action": "completed",
    "completed": "completed",
    "incomplete": "incomplete",
    "failed": "failed",
    "expired": "failed",
    "cancelling": "cancelled",
    "cancelled": "cancelled",
}
#: The run's incomplete reasons as the Responses API names them.
_INCOMPLETE = {"max_completion_tokens": "max_output_tokens", "max_tokens": "max_output_tokens"}
#: Error codes ``ResponseError.code`` allows that the engine writes; any other is server_error.
_ERROR_CODES = ("server_error", "rate_limit_exceeded", "invalid_prompt")

# -- run -> response ---------------------------------------------------------------------------


class Renderer:
    """Responses-API objects from the store's runs, steps and messages."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def output(self, run: RunRecord) -> list[JSONObject]:
        items: list[JSONObject] = []
        for step in self.store.steps(run.id):
            details = step.step_details
            if step.type == "message_creation":
                message_id = str(details.get("message_creation", {}).get("message_id"))
                message = await self.store.get_message(run.thread_id, message_id)
                if message is not None:
                    items.append(self.output_message(message))
            else:
                for call in details.get("tool_calls") or []:
                    if call.get("type", "function") == "function":
                        items.append(self.function_call(call, step.status))
        return items

    @staticmethod
    def output_message(message: MessageRecord) -> JSONObject:
        parts = [
            {
                "type": "output_text",
                "text": str(p["text"]["value"]),
                "annotations": [],
                "logprobs": [],
            }
            for p in message.content
            if p.get("type") == "text"
        ]
        status = message.status if message.status in ("completed", "incomplete") else "in_progress"
        return {
            "id": wire_id("message", message.id),
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": parts,
        }

    @staticmethod
    def function_call(call: Mapping[str, Any], step_status: str) -> JSONObject:
        call_id = str(call.get("id") or "")
        return {
            "id": "fc_" + call_id.removeprefix("call_"),
            "type": "function_call",
            "call_id": call_id,
            "name": str(call.get("name") or ""),
            "arguments": str(call.get("arguments") or ""),
            "status": "in_progress" if step_status == "in_progress" else "completed",
        }

    @staticmethod
    def input_message(message: MessageRecord) -> JSONObject:
        kind = "input_text" if message.role == "user" else "output_text"
        parts: list[JSONObject] = []
        for p in message.content:
            if p.get("type") == "text":
                part: JSONObject = {"type": kind, "text": str(p["text"]["value"])}
                if kind == "output_text":
                    part["annotations"] = []
                parts.append(part)
        return {
            "id": wire_id("message", message.id),
            "type": "message",
            "role": message.role,
            "status": "completed",
            "content": parts,
        }

    async def response(self, run: RunRecord, record: ResponseRecord) -> JSONObject:
        settings = record.settings
        status = _STATUS.get(run.status, run.status)
        output = await self.output(run)
        usage = None
        if run.usage is not None:
            prompt, completion = run.usage["prompt_tokens"], run.usage["completion_tokens"]
            usage = {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + completion,
            }
        error = None
        if status == "failed":
            last = run.last_error or {}
            code = last.get("code") if last.get("code") in _ERROR_CODES else "server_error"
            error = {"code": code, "message": str(last.get("message") or "The run failed.")}
        incomplete = None
        if status == "incomplete":
            reason = (run.incomplete_details or {}).get("reason")
            incomplete = {"reason": _INCOMPLETE.get(str(reason), reason)}
        text = "".join(
            part["text"]
            for item in output
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )
        ended = run.completed_at or run.incomplete_at or run.failed_at or run.cancelled_at
        body: JSONObject = {
            "id": wire_id("response", run.id),
            "object": "response",
            "created_at": run.created_at // 1000,
            "status": status,
            "background": bool(settings.get("background")),
            "completed_at": ended // 1000 if ended and status == "completed" else None,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": settings.get("instructions"),
            "max_output_tokens": run.max_completion_tokens,
            "metadata": run.metadata,
            "model": run.model,
            "output": output,
            "output_text": text,
            "parallel_tool_calls": bool(run.parallel_tool_calls),
            "previous_response_id": (
                wire_id("response", record.previous_response_id)
                if record.previous_response_id
                else None
            ),
            "conversation": (
                {"id": wire_id("conversation", record.thread_id)} if record.conversation else None
            ),
            "prompt": settings.get("prompt"),
            "reasoning": settings.get("reasoning"),
            "store": bool(record.stored),
            "temperature": run.temperature,
            "text": settings.get("text") or {"format": {"type": "text"}},
            "tool_choice": settings.get("tool_choice") or "auto",
            "tools": settings.get("tools") or [],
            "top_p": run.top_p,
            "truncation": settings.get("truncation") or "disabled",
            "usage": usage,
            "user": settings.get("user"),
        }
        return body


def item_page(items: list[JSONObject], query: Mapping[str, str]) -> JSONObject:
    """A list page of items (oldest first) by ``order`` (default desc), ``after`` and ``limit``."""
    if (query.get("order") or "desc") == "desc":
        items = items[::-1]
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        if after not in ids:
            raise bad("after", f"Invalid 'after': no item with id '{after}'.")
        items = items[ids.index(after) + 1 :]
    raw = query.get("limit") or "20"
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise bad("limit", f"Invalid 'limit': {raw!r}. Expected an integer from 1 to 100.")
    page = items[: int(raw)]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > len(page),
    }
