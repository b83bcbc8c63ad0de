"""DashScope's Assistant API under ``/api/v1``: assistants, threads and messages.

Milliseconds for timestamps, ``message_`` ids, 200 on every success with ``request_id`` in the
body, ``{code, message, request_id}`` errors. Bodies as the SDK sends them: ``""`` on thread
create, ``metadata: null`` and ``file_ids: []`` meaning "unchanged" on updates, POST for updates.
The ``*_object`` renderers are public so that other route modules (runs, streams) reuse them.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from assistant_kit.server.endpoints import Api
from assistant_kit.server.envelopes import DASHSCOPE
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.routes.crud import (
    Wire,
    crud_routes,
    given_assistant_fields,
    message_input,
    update_metadata,
)
from assistant_kit.server.services import UNSET, AssistantFields
from assistant_kit.server.store.records import AssistantRecord, MessageRecord, ThreadRecord
from assistant_kit.server.tools.plugins import public_tools

D = DASHSCOPE


def assistant_object(a: AssistantRecord) -> dict[str, Any]:
    return {
        "id": D.id("assistant", a.id),
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


def thread_object(t: ThreadRecord) -> dict[str, Any]:
    return {
        "id": D.id("thread", t.id),
        "object": "thread",
        "created_at": t.created_at,
        "metadata": t.metadata,
    }


def message_object(m: MessageRecord) -> dict[str, Any]:
    file_ids = m.file_ids or [a["file_id"] for a in m.attachments if "file_id" in a]
    return {
        "id": D.id("message", m.id),
        "object": "thread.message",
        "created_at": m.created_at,
        "thread_id": D.id("thread", m.thread_id),
        "assistant_id": D.id("assistant", m.assistant_id) or "",
        "run_id": D.id("run", m.run_id) or "",
        "role": m.role,
        "content": [_content_part(p) for p in m.content],
        "file_ids": file_ids,
        "metadata": m.metadata,
        "status": m.status,
        "incomplete_details": m.incomplete_details,
        "completed_at": m.completed_at,
        "incomplete_at": m.incomplete_at,
    }


def _content_part(part: dict[str, Any]) -> dict[str, Any]:
    """dashscope 2.0.2's ``ImageFile`` drops its ``file_id``: repeat it on the part, where the
    SDK's ``MessageContentImageFile`` keeps it (``part.file_id``)."""
    if part.get("type") != "image_file" or not isinstance(part.get("image_file"), dict):
        return part
    return {**part, "file_id": part["image_file"].get("file_id")}


def deleted(kind: str, object_name: str, uid: str) -> dict[str, Any]:
    return {"id": D.id(kind, uid), "object": object_name, "deleted": True}


def assistant_fields(body: dict[str, Any], update: bool) -> AssistantFields:
    """The body's fields; ``metadata: null`` and (on update) ``file_ids: []`` mean unchanged."""
    given = given_assistant_fields(body)
    if update and given.get("file_ids", UNSET) in ([], None):
        del given["file_ids"]
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
    """Assistants, threads and messages in the DashScope dialect."""
    return crud_routes(api, ctx, WIRE)
