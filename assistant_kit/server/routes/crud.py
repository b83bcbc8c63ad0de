"""The assistants / threads / messages route table, shared by both dialects.

The handlers are the same for both wire dialects: parse, call the service, render. What differs
(how a body maps to fields, how a record looks on the wire) comes from the dialect's ``Wire``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.ids import parse_id
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.services import UNSET, AssistantFields, MessageInput
from assistant_kit.server.store.records import AssistantRecord, MessageRecord, ThreadRecord

JSONObject = dict[str, Any]


#: The assistant fields a create or update body may carry (in either dialect).
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


def given_assistant_fields(body: JSONObject) -> JSONObject:
    """The assistant fields present in ``body``; ``metadata: null`` means unchanged."""
    given = {k: body[k] for k in ASSISTANT_FIELDS if k in body}
    if given.get("metadata", UNSET) is None:
        del given["metadata"]
    return given


def message_input(body: JSONObject) -> MessageInput:
    """A message create body (both dialects send the same shape)."""
    return MessageInput(
        content=body["content"],
        role=body.get("role") or "user",
        file_ids=body.get("file_ids") or (),
        attachments=body.get("attachments") or (),
        metadata=body.get("metadata") or {},
    )


def update_metadata(body: JSONObject) -> Any:
    """``metadata`` as an update gives it; absent or ``null`` is ``UNSET`` (unchanged)."""
    value = body.get("metadata", UNSET)
    return UNSET if value is None else value


@dataclass(frozen=True, slots=True)
class Wire:
    """How one dialect reads bodies and renders records."""

    assistant_object: Callable[[AssistantRecord], JSONObject]
    thread_object: Callable[[ThreadRecord], JSONObject]
    message_object: Callable[[MessageRecord], JSONObject]
    deleted: Callable[[str, str, str], JSONObject]
    assistant_fields: Callable[[JSONObject, bool], AssistantFields]
    message_input: Callable[[JSONObject], MessageInput]
    #: ``metadata`` as an update gives it (``UNSET`` = leave alone).
    update_metadata: Callable[[JSONObject], Any]


def crud_routes(api: Api, ctx: ServerContext, wire: Wire) -> list[BaseRoute]:
    """The routes of assistants, threads and messages in ``api``'s dialect."""
    services = ctx.services
    d = api.dialect

    async def create_assistant(call: Call) -> JSONObject:
        record = await services.create_assistant(wire.assistant_fields(call.body, False))
        return wire.assistant_object(record)

    async def list_assistants(call: Call) -> JSONObject:
        page = await services.list_assistants(call.page("assistant"))
        return d.list_body([wire.assistant_object(a) for a in page.items], page.has_more)

    async def get_assistant(call: Call) -> JSONObject:
        return wire.assistant_object(await services.get_assistant(call.id("assistant")))

    async def update_assistant(call: Call) -> JSONObject:
        fields = wire.assistant_fields(call.body, True)
        record = await services.update_assistant(call.id("assistant"), fields)
        return wire.assistant_object(record)

    async def delete_assistant(call: Call) -> JSONObject:
        uid = call.id("assistant")
        await services.delete_assistant(uid)
        return wire.deleted("assistant", "assistant.deleted", uid)

    async def create_thread(call: Call) -> JSONObject:
        record = await services.create_thread(
            messages=[wire.message_input(m) for m in call.body.get("messages") or ()],
            metadata=call.body.get("metadata"),
            tool_resources=call.body.get("tool_resources"),
        )
        return wire.thread_object(record)

    async def get_thread(call: Call) -> JSONObject:
        return wire.thread_object(await services.get_thread(call.id("thread")))

    async def update_thread(call: Call) -> JSONObject:
        record = await services.update_thread(
            call.id("thread"),
            metadata=wire.update_metadata(call.body),
            tool_resources=call.body.get("tool_resources", UNSET),
        )
        return wire.thread_object(record)

    async def delete_thread(call: Call) -> JSONObject:
        uid = call.id("thread")
        await services.delete_thread(uid)
        return wire.deleted("thread", "thread.deleted", uid)

    async def create_message(call: Call) -> JSONObject:
        message = wire.message_input(call.body)
        record = await services.create_message(call.id("thread"), message)
        return wire.message_object(record)

    async def list_messages(call: Call) -> JSONObject:
        run_id = None
        raw_run = call.request.query_params.get("run_id")
        if raw_run:
            run_id = parse_id("run", raw_run)
            if run_id is None:
                raise ApiError(
                    400, "invalid_value", f"Invalid 'run_id': {raw_run!r}.", param="run_id"
                )
        page = await services.list_messages(call.id("thread"), call.page("message"), run_id=run_id)
        return d.list_body([wire.message_object(m) for m in page.items], page.has_more)

    async def get_message(call: Call) -> JSONObject:
        record = await services.get_message(call.id("thread"), call.id("message"))
        return wire.message_object(record)

    async def update_message(call: Call) -> JSONObject:
        record = await services.update_message(
            call.id("thread"), call.id("message"), metadata=wire.update_metadata(call.body)
        )
        return wire.message_object(record)

    async def delete_message(call: Call) -> JSONObject:
        thread_id, uid = call.id("thread"), call.id("message")
        await services.delete_message(thread_id, uid)
        return wire.deleted("message", "thread.message.deleted", uid)

    r = api.route
    one_assistant = "/assistants/{assistant_id}"
    one_thread = "/threads/{thread_id}"
    one_message = "/threads/{thread_id}/messages/{message_id}"
    update = ["POST", "PATCH"]
    return [
        r("/assistants", create_assistant, ["POST"], schema="assistant_create"),
        r("/assistants", list_assistants, ["GET"]),
        r(one_assistant, get_assistant, ["GET"]),
        r(one_assistant, update_assistant, update, schema="assistant_update"),
        r(one_assistant, delete_assistant, ["DELETE"]),
        r("/threads", create_thread, ["POST"], schema="thread_create"),
        r(one_thread, get_thread, ["GET"]),
        r(one_thread, update_thread, update, schema="thread_update"),
        r(one_thread, delete_thread, ["DELETE"]),
        r("/threads/{thread_id}/messages", create_message, ["POST"], schema="message_create"),
        r("/threads/{thread_id}/messages", list_messages, ["GET"]),
        r(one_message, get_message, ["GET"]),
        r(one_message, update_message, update, schema="message_update"),
        r(one_message, delete_message, ["DELETE"]),
    ]
