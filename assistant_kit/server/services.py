"""Dialect-neutral operations on assistants, threads and messages.

Both route tables call these with neutral ids (bare UUIDs, see ``ids.py``) and neutral values
(``AssistantFields``, ``MessageInput``); they get records back and render them in their dialect.
A field left as ``UNSET`` means "not given": creates use the default, updates leave it alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from assistant_kit.errors import ApiError
from assistant_kit.server.ids import new_id, now_ms, parse_id
from assistant_kit.server.store.base import CursorNotFound, Page, PageQuery, Store
from assistant_kit.server.store.records import (
    FILES,
    AssistantRecord,
    MessageRecord,
    Table,
    ThreadRecord,
)


class _Unset:
    """The type of ``UNSET``: a value that was not given (``None`` means null)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


class NotFound(ApiError):
    """No object of ``kind`` with neutral id ``uid``; each dialect words it with its own id."""

    def __init__(self, kind: str, uid: str, *, wire_id: str | None = None) -> None:
        self.kind = kind
        self.uid = uid
        self.wire_id = wire_id
        super().__init__(404, "not_found", f"No {kind} found with id '{wire_id or uid}'.")


class ThreadBusy(ApiError):
    """The thread has an active run; each dialect words it with its own ids."""

    def __init__(self, thread_id: str, run_id: str, action: str) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.action = action
        super().__init__(400, "thread_busy", f"thread {thread_id} has an active run {run_id}")


@dataclass(frozen=True, slots=True)
class AssistantFields:
    """Assistant fields as a request gave them; ``UNSET`` ones were not given."""

    model: Any = UNSET
    name: Any = UNSET
    description: Any = UNSET
    instructions: Any = UNSET
    tools: Any = UNSET
    file_ids: Any = UNSET
    tool_resources: Any = UNSET
    metadata: Any = UNSET
    temperature: Any = UNSET
    top_p: Any = UNSET
    top_k: Any = UNSET
    max_tokens: Any = UNSET
    response_format: Any = UNSET

    def given(self) -> dict[str, Any]:
        """The fields that were given, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not UNSET
        }


@dataclass(frozen=True, slots=True)
class MessageInput:
    """A message to add: ``content`` is a string or a list of input or output parts."""

    content: str | Sequence[Mapping[str, Any]]
    role: str = "user"
    file_ids: Sequence[str] = ()
    attachments: Sequence[Mapping[str, Any]] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    assistant_id: str | None = None
    run_id: str | None = None


def content_parts(content: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Message content in output form: a string or input parts become stored parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            text = part.get("text")
            if isinstance(text, Mapping):
                value = str(text.get("value", ""))
                annotations = list(text.get("annotations") or [])
            else:
                value, annotations = str(text or ""), []
            parts.append({"type": "text", "text": {"value": value, "annotations": annotations}})
        else:
            parts.append(dict(part))
    return parts


def message_text(message: MessageRecord) -> str:
    """The text parts of a message joined together."""
    return "".join(str(p["text"]["value"]) for p in message.content if p.get("type") == "text")


class Services:
    """The operations both wire dialects expose, over one ``Store``."""

    def __init__(self, store: Store, *, seal_tools: Callable[[Any], Any] | None = None) -> None:
        self.store = store
        #: Tool entries as they may be stored (``tools.plugins.seal_plugin_tokens``: no tokens).
        self.seal_tools: Callable[[Any], Any] = seal_tools or (lambda tools: tools)
        #: Called with a thread's id after it is deleted (the code interpreter forgets its worker).
        self.thread_deleted: list[Callable[[str], Awaitable[None]]] = []
        #: Called with a thread's id and the messages just stored in it (attachments for
        #: file_search join the thread's vector store: ``knowledge.attachments``).
        self.messages_added: list[Callable[[str, Sequence[MessageRecord]], Awaitable[None]]] = []
        #: The tables ids in ``tool_resources`` are looked up in, by kind (``create_app`` adds
        #: ``vector_store``; a kind without a table is not checked).
        self.resource_tables: dict[str, Table[Any]] = {"file": FILES}

    async def check_attachments(self, messages: Sequence[MessageInput]) -> None:
        """Every attached file exists (404 if not, 400 for an id that is not a file's)."""
        for m in messages:
            for i, attachment in enumerate(m.attachments or ()):
                wire = attachment.get("file_id") if isinstance(attachment, Mapping) else None
                uid = parse_id("file", wire) if isinstance(wire, str) else None
                if uid is None:
                    raise ApiError(
                        400,
                        "invalid_value",
                        f"Invalid 'attachments[{i}].file_id': {wire!r} is not a file id.",
                        param=f"attachments[{i}].file_id",
                    )
                if await self.store.get(FILES, uid) is None:
                    raise NotFound("file", uid)

    async def check_tool_resources(self, tool_resources: Any) -> None:
        """Every vector store and file that ``tool_resources`` names exists (404 if not, 400
        for an id of the wrong kind), as the hosted API checks them."""
        if not isinstance(tool_resources, Mapping):
            return
        wanted = (
            ("file_search", "vector_store_ids", "vector_store"),
            ("code_interpreter", "file_ids", "file"),
        )
        for tool, key, kind in wanted:
            table = self.resource_tables.get(kind)
            if table is None:
                continue
            section = tool_resources.get(tool)
            ids = section.get(key) if isinstance(section, Mapping) else None
            for i, wire in enumerate(ids if isinstance(ids, list) else ()):
                uid = parse_id(kind, wire) if isinstance(wire, str) else None
                param = f"tool_resources.{tool}.{key}[{i}]"
                if uid is None:
                    raise ApiError(
                        400,
                        "invalid_value",
                        f"Invalid '{param}': {wire!r} is not a {kind} id.",
                        param=param,
                    )
                if await self.store.get(table, uid) is None:
                    raise NotFound(kind, uid)

    # -- assistants --------------------------------------------------------------------------

    async def create_assistant(self, fields: AssistantFields) -> AssistantRecord:
        given = fields.given()
        if not isinstance(given.get("model"), str) or not given["model"]:
            raise ApiError(
                400,
                "missing_required_parameter",
                "Missing required parameter: 'model'.",
                param="model",
            )
        for key in ("tools", "file_ids", "tool_resources", "metadata"):
            if given.get(key) is None:
                given.pop(key, None)
        if "tools" in given:
            given["tools"] = self.seal_tools(given["tools"])
        await self.check_tool_resources(given.get("tool_resources"))
        record = AssistantRecord(id=new_id(), created_at=now_ms(), **given)
        await self.store.insert_assistant(record)
        return record

    async def get_assistant(self, uid: str) -> AssistantRecord:
        record = await self.store.get_assistant(uid)
        if record is None:
            raise NotFound("assistant", uid)
        return record

    async def update_assistant(self, uid: str, fields: AssistantFields) -> AssistantRecord:
        changes = fields.given()
        if changes.get("model", "") is None:
            raise ApiError(400, "invalid_value", "'model' cannot be null.", param="model")
        for key in ("tools", "file_ids", "tool_resources", "metadata"):
            if key in changes and changes[key] is None:
                changes[key] = [] if key in ("tools", "file_ids") else {}
        if "tools" in changes:
            changes["tools"] = self.seal_tools(changes["tools"])
        await self.check_tool_resources(changes.get("tool_resources"))
        record = await self.store.update_assistant(uid, changes)
        if record is None:
            raise NotFound("assistant", uid)
        return record

    async def delete_assistant(self, uid: str) -> None:
        if not await self.store.delete_assistant(uid):
            raise NotFound("assistant", uid)

    async def list_assistants(self, page: PageQuery) -> Page[AssistantRecord]:
        try:
            return await self.store.list_assistants(page)
        except CursorNotFound as exc:
            raise _bad_cursor(exc) from exc

    # -- threads -----------------------------------------------------------------------------

    async def create_thread(
        self,
        *,
        messages: Sequence[MessageInput] = (),
        metadata: Mapping[str, str] | None = None,
        tool_resources: Mapping[str, Any] | None = None,
    ) -> ThreadRecord:
        await self.check_tool_resources(tool_resources)
        await self.check_attachments(messages)
        thread, records = self.new_thread(
            messages=messages, metadata=metadata, tool_resources=tool_resources
        )
        await self.store.insert_thread(thread, records)
        for hook in self.messages_added:
            await hook(thread.id, records)
        return thread

    @classmethod
    def new_thread(
        cls,
        *,
        messages: Sequence[MessageInput] = (),
        metadata: Mapping[str, str] | None = None,
        tool_resources: Mapping[str, Any] | None = None,
    ) -> tuple[ThreadRecord, list[MessageRecord]]:
        """A thread and its initial messages, not yet stored (thread-and-run stores them with
        its run, in one transaction)."""
        thread = ThreadRecord(
            id=new_id(),
            created_at=now_ms(),
            metadata=dict(metadata or {}),
            tool_resources=dict(tool_resources or {}),
        )
        records = [cls.message_record(thread.id, m, thread.created_at) for m in messages]
        return thread, records

    async def get_thread(self, uid: str) -> ThreadRecord:
        record = await self.store.get_thread(uid)
        if record is None:
            raise NotFound("thread", uid)
        return record

    async def update_thread(
        self, uid: str, *, metadata: Any = UNSET, tool_resources: Any = UNSET
    ) -> ThreadRecord:
        changes = {
            k: v
            for k, v in (("metadata", metadata), ("tool_resources", tool_resources))
            if v is not UNSET and v is not None
        }
        await self.check_tool_resources(changes.get("tool_resources"))
        record = await self.store.update_thread(uid, changes)
        if record is None:
            raise NotFound("thread", uid)
        return record

    async def delete_thread(self, uid: str) -> None:
        if not await self.store.delete_thread(uid):
            raise NotFound("thread", uid)
        for hook in self.thread_deleted:
            await hook(uid)

    # -- messages ----------------------------------------------------------------------------

    async def create_message(self, thread_id: str, message: MessageInput) -> MessageRecord:
        await self.get_thread(thread_id)
        active = self.store.active_run(thread_id)  # a thread with an active run takes none
        if active is not None:
            raise ThreadBusy(thread_id, active, "message")
        await self.check_attachments([message])
        record = self.message_record(thread_id, message, now_ms())
        await self.store.insert_message(record)
        for hook in self.messages_added:
            await hook(thread_id, [record])
        return record

    async def get_message(self, thread_id: str, uid: str) -> MessageRecord:
        record = await self.store.get_message(thread_id, uid)
        if record is None:
            await self.get_thread(thread_id)
            raise NotFound("message", uid)
        return record

    async def update_message(self, thread_id: str, uid: str, *, metadata: Any) -> MessageRecord:
        changes = {} if metadata is UNSET or metadata is None else {"metadata": metadata}
        record = await self.store.update_message(thread_id, uid, changes)
        if record is None:
            await self.get_thread(thread_id)
            raise NotFound("message", uid)
        return record

    async def delete_message(self, thread_id: str, uid: str) -> None:
        if not await self.store.delete_message(thread_id, uid):
            await self.get_thread(thread_id)
            raise NotFound("message", uid)

    async def list_messages(
        self, thread_id: str, page: PageQuery, *, run_id: str | None = None
    ) -> Page[MessageRecord]:
        await self.get_thread(thread_id)
        try:
            return await self.store.list_messages(thread_id, page, run_id=run_id)
        except CursorNotFound as exc:
            raise _bad_cursor(exc) from exc

    @staticmethod
    def message_record(thread_id: str, message: MessageInput, created_at: int) -> MessageRecord:
        """A message record for ``thread_id``, not yet stored."""
        return MessageRecord(
            id=new_id(),
            thread_id=thread_id,
            created_at=created_at,
            role=message.role,
            content=content_parts(message.content),
            assistant_id=message.assistant_id,
            run_id=message.run_id,
            file_ids=list(message.file_ids),
            attachments=[dict(a) for a in message.attachments],
            metadata=dict(message.metadata),
            status="completed",
            completed_at=created_at if message.role == "assistant" else None,
        )


def _bad_cursor(exc: CursorNotFound) -> ApiError:
    """An unknown pagination cursor is a 400 naming the parameter."""
    return ApiError(
        400,
        "invalid_value",
        f"Invalid '{exc.param}': no object with id '{exc.value}' in this list.",
        param=exc.param,
    )
