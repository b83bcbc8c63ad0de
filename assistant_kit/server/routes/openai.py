"""OpenAI Assistants v2 under ``/v1``: assistants, threads and messages.

Seconds for timestamps, ``msg_`` ids, the bare object as the body, ``{"error": {...}}`` errors.
The ``*_object`` renderers are public so that other route modules (runs, streams) reuse them.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from assistant_kit.server.endpoints import Api
from assistant_kit.server.envelopes import OPENAI
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.routes.crud import (
    Wire,
    crud_routes,
    given_assistant_fields,
    message_input,
    update_metadata,
)
from assistant_kit.server.services import AssistantFields
from assistant_kit.server.store.records import AssistantRecord, MessageRecord, ThreadRecord
from assistant_kit.server.tools.plugins import public_tools

D = OPENAI


def assistant_object(a: AssistantRecord) -> dict[str, Any]:
    return {
        "id": D.id("assistant", a.id),
        "object": "assistant",
        "created_at": D.ts(a.created_at),
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


def thread_object(t: ThreadRecord) -> dict[str, Any]:
    return {
        "id": D.id("thread", t.id),
        "object": "thread",
        "created_at": D.ts(t.created_at),
        "metadata": t.metadata,
        "tool_resources": t.tool_resources,
    }


def message_object(m: MessageRecord) -> dict[str, Any]:
    attachments = m.attachments or [
        {"file_id": f, "tools": [{"type": "file_search"}]} for f in m.file_ids
    ]
    return {
        "id": D.id("message", m.id),
        "object": "thread.message",
        "created_at": D.ts(m.created_at),
        "thread_id": D.id("thread", m.thread_id),
        "status": m.status,
        "incomplete_details": m.incomplete_details,
        "completed_at": D.ts(m.completed_at),
        "incomplete_at": D.ts(m.incomplete_at),
        "role": m.role,
        "content": m.content,
        "assistant_id": D.id("assistant", m.assistant_id),
        "run_id": D.id("run", m.run_id),
        "attachments": attachments,
        "metadata": m.metadata,
    }


def deleted(kind: str, object_name: str, uid: str) -> dict[str, Any]:
    return {"id": D.id(kind, uid), "object": object_name, "deleted": True}


def assistant_fields(body: dict[str, Any], update: bool) -> AssistantFields:
    """The body's assistant fields; ``metadata: null`` leaves metadata unchanged."""
    given = given_assistant_fields(body)
    if given.get("response_format") == "auto":
        given["response_format"] = None
    return AssistantFields(**given)


WIRE = Wire(
    assistant_object=assistant_object,
    thread_object=thread_object,
    message_object=message_object,
    deleted=deleted,
    assistant_fields=assistant_fields,
    message_input=message_input,
    update_metadata=update_metadata,
)


def routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """Assistants, threads and messages in the OpenAI dialect."""
    return crud_routes(api, ctx, WIRE)
