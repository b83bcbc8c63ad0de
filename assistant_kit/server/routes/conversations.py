"""OpenAI's Conversations API (``/v1/conversations``): **a conversation is a thread** of the store.

``conv_<uuid>`` and ``thread_<uuid>`` name the same object, and either prefix is accepted on
both surfaces (``conversations.retrieve(thread.id)``, ``threads.retrieve(conversation.id)``);
each renders its own form. A conversation's items are the thread's history in order: its
messages (``msg_`` ids, the same as the thread messages') and, for each tool step, its
``function_call`` items followed by their ``function_call_output`` items. Items are created as
thread messages (user or assistant text); only messages can be deleted. Built-in tool calls
(search, images, code) are not items yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.ids import parse_id
from assistant_kit.server.responses.render import Renderer, item_page
from assistant_kit.server.responses.request import bad, parse_input, wire_id
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.services import MessageInput, Services
from assistant_kit.server.store.records import StepRecord, ThreadRecord

JSONObject = dict[str, Any]


def conversation(thread: ThreadRecord) -> JSONObject:
    return {
        "id": wire_id("conversation", thread.id),
        "object": "conversation",
        "created_at": thread.created_at // 1000,
        "metadata": thread.metadata,
    }


def _messages(items: Any, param: str) -> list[MessageInput]:
    """Conversation items to add: user or assistant messages."""
    if items is None:
        return []
    parsed = parse_input(items)
    if parsed.developer or parsed.outputs or len(parsed.messages) != len(items):
        raise bad(param, "Only user and assistant message items can be added to a conversation.")
    return parsed.messages


def _step_items(step: StepRecord) -> list[JSONObject]:
    calls = [
        c
        for c in step.step_details.get("tool_calls") or []
        if c.get("type", "function") == "function"
    ]
    out = [Renderer.function_call(c, step.status) for c in calls]
    for call in calls:
        if call.get("output") is not None:
            call_id = str(call.get("id") or "")
            out.append(
                {
                    "id": "fco_" + call_id.removeprefix("call_"),
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": str(call["output"]),
                    "status": "completed",
                }
            )
    return out


def conversation_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """The conversation and conversation item routes (OpenAI mount)."""
    services: Services = ctx.services

    def thread_uid(call: Call) -> str:
        value = call.request.path_params["conversation_id"]
        uid = parse_id("thread", value)
        if uid is None:
            raise ApiError(404, "not_found", f"Conversation with id '{value}' not found.")
        return uid

    async def thread_of(call: Call) -> ThreadRecord:
        uid = thread_uid(call)
        thread = await ctx.store.get_thread(uid)
        if thread is None:
            shown = wire_id("conversation", uid)
            raise ApiError(404, "not_found", f"Conversation with id '{shown}' not found.")
        return thread

    def items_of(thread_id: str) -> list[JSONObject]:
        messages, steps = ctx.store.history(thread_id)
        by_position: dict[int, list[StepRecord]] = {}
        for step in steps:
            if step.type == "tool_calls":
                by_position.setdefault(step.thread_position, []).append(step)
        items = [i for s in by_position.get(0, []) for i in _step_items(s)]
        for seq, message in messages:
            if message.role == "user":
                items.append(Renderer.input_message(message))
            else:
                items.append(Renderer.output_message(message))
            items += [i for s in by_position.get(seq, []) for i in _step_items(s)]
        return items

    async def create(call: Call) -> JSONObject:
        body = call.body
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise bad("metadata", "Invalid 'metadata': expected an object.", "invalid_type")
        thread = await services.create_thread(
            messages=_messages(body.get("items"), "items"), metadata=metadata
        )
        return conversation(thread)

    async def retrieve(call: Call) -> JSONObject:
        return conversation(await thread_of(call))

    async def update(call: Call) -> JSONObject:
        await thread_of(call)
        metadata = call.body.get("metadata")
        if not isinstance(metadata, Mapping):
            raise bad("metadata", "Missing required parameter: 'metadata'.", "invalid_type")
        return conversation(await services.update_thread(thread_uid(call), metadata=metadata))

    async def delete(call: Call) -> JSONObject:
        thread = await thread_of(call)
        await services.delete_thread(thread.id)
        return {
            "id": wire_id("conversation", thread.id),
            "object": "conversation.deleted",
            "deleted": True,
        }

    async def add_items(call: Call) -> JSONObject:
        thread = await thread_of(call)
        items = call.body.get("items")
        if not isinstance(items, list) or not items:
            raise bad("items", "Missing required parameter: 'items'.", "missing_required_parameter")
        added = [
            Renderer.input_message(await services.create_message(thread.id, m))
            if m.role == "user"
            else Renderer.output_message(await services.create_message(thread.id, m))
            for m in _messages(items, "items")
        ]
        return {
            "object": "list",
            "data": added,
            "first_id": added[0]["id"],
            "last_id": added[-1]["id"],
            "has_more": False,
        }

    async def list_items(call: Call) -> JSONObject:
        thread = await thread_of(call)
        return item_page(items_of(thread.id), call.request.query_params)

    async def get_item(call: Call) -> JSONObject:
        thread = await thread_of(call)
        item_id = call.request.path_params["item_id"]
        for item in items_of(thread.id):
            if item["id"] == item_id:
                return item
        raise ApiError(404, "not_found", f"Item with id '{item_id}' not found.")

    async def delete_item(call: Call) -> JSONObject:
        thread = await thread_of(call)
        item_id = call.request.path_params["item_id"]
        uid = parse_id("message", item_id)
        if uid is None:
            if any(i["id"] == item_id for i in items_of(thread.id)):
                raise bad("item_id", "Only message items can be deleted on this server.")
            raise ApiError(404, "not_found", f"Item with id '{item_id}' not found.")
        await services.delete_message(thread.id, uid)
        return conversation(thread)

    r = api.route
    one = "/conversations/{conversation_id}"
    return [
        r("/conversations", create, ["POST"]),
        r(one, retrieve, ["GET"]),
        r(one, update, ["POST"]),
        r(one, delete, ["DELETE"]),
        r(f"{one}/items", add_items, ["POST"]),
        r(f"{one}/items", list_items, ["GET"]),
        r(f"{one}/items/{{item_id}}", get_item, ["GET"]),
        r(f"{one}/items/{{item_id}}", delete_item, ["DELETE"]),
    ]
