"""The assistants / threads / messages route table, the same in every dialect.

The handlers parse, call the service and render; how a body maps to fields and how a record looks
on the wire is the dialect's (``api.dialect``, see ``dialects/``).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.ids import parse_id
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.services import UNSET

JSONObject = dict[str, Any]


def crud_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """The routes of assistants, threads and messages in ``api``'s dialect."""
    services = ctx.services
    d = api.dialect

    async def create_assistant(call: Call) -> JSONObject:
        record = await services.create_assistant(d.assistant_fields(call.body, False))
        return d.assistant(record)

    async def list_assistants(call: Call) -> JSONObject:
        page = await services.list_assistants(call.page("assistant"))
        return d.list_body([d.assistant(a) for a in page.items], page.has_more)

    async def get_assistant(call: Call) -> JSONObject:
        return d.assistant(await services.get_assistant(call.id("assistant")))

    async def update_assistant(call: Call) -> JSONObject:
        fields = d.assistant_fields(call.body, True)
        record = await services.update_assistant(call.id("assistant"), fields)
        return d.assistant(record)

    async def delete_assistant(call: Call) -> JSONObject:
        uid = call.id("assistant")
        await services.delete_assistant(uid)
        return d.deleted("assistant", "assistant.deleted", uid)

    async def create_thread(call: Call) -> JSONObject:
        record = await services.create_thread(
            messages=[d.message_input(m) for m in call.body.get("messages") or ()],
            metadata=call.body.get("metadata"),
            tool_resources=call.body.get("tool_resources"),
        )
        return d.thread(record)

    async def get_thread(call: Call) -> JSONObject:
        return d.thread(await services.get_thread(call.id("thread")))

    async def update_thread(call: Call) -> JSONObject:
        record = await services.update_thread(
            call.id("thread"),
            metadata=d.update_metadata(call.body),
            tool_resources=call.body.get("tool_resources", UNSET),
        )
        return d.thread(record)

    async def delete_thread(call: Call) -> JSONObject:
        uid = call.id("thread")
        await services.delete_thread(uid)
        return d.deleted("thread", "thread.deleted", uid)

    async def create_message(call: Call) -> JSONObject:
        message = d.message_input(call.body)
        record = await services.create_message(call.id("thread"), message)
        return d.message(record)

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
        return d.list_body([d.message(m) for m in page.items], page.has_more)

    async def get_message(call: Call) -> JSONObject:
        record = await services.get_message(call.id("thread"), call.id("message"))
        return d.message(record)

    async def update_message(call: Call) -> JSONObject:
        record = await services.update_message(
            call.id("thread"), call.id("message"), metadata=d.update_metadata(call.body)
        )
        return d.message(record)

    async def delete_message(call: Call) -> JSONObject:
        thread_id, uid = call.id("thread"), call.id("message")
        await services.delete_message(thread_id, uid)
        return d.deleted("message", "thread.message.deleted", uid)

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
