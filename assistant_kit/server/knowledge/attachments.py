"""Message attachments for ``file_search`` go into the thread's vector store, as OpenAI does it.

The first message that attaches a file with the ``file_search`` tool gives its thread a vector
store (named after the thread, expiring 7 days after its last use) and records it in the
thread's ``tool_resources.file_search.vector_store_ids``; later attachments join that store.
``Services`` calls ``attach`` after it stores messages (``create_app`` registers it)::

    services.messages_added.append(ThreadFiles(vector_stores, store).attach)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assistant_kit.server.ids import parse_id
from assistant_kit.server.knowledge.vector_stores import FileInput, VectorStoreInput, VectorStores
from assistant_kit.server.store.base import Store
from assistant_kit.server.store.records import MessageRecord

#: How long a thread's own vector store lives after its last use.
THREAD_STORE_EXPIRY = {"anchor": "last_active_at", "days": 7}


def vector_store_ids(*tool_resources: Mapping[str, Any] | None) -> list[str]:
    """The neutral ids of the vector stores the ``tool_resources`` name, without repeats."""
    ids: list[str] = []
    for resources in tool_resources:
        section = (resources or {}).get("file_search") or {}
        for wire in section.get("vector_store_ids") or ():
            uid = parse_id("vector_store", wire) if isinstance(wire, str) else None
            uid = uid or (wire if isinstance(wire, str) else None)
            if uid and uid not in ids:
                ids.append(uid)
    return ids


def searched_files(messages: Sequence[MessageRecord]) -> list[str]:
    """The neutral ids of the files the messages attach for ``file_search``."""
    found: list[str] = []
    for message in messages:
        for attachment in message.attachments or ():
            tools = attachment.get("tools") or ()
            if not any(t.get("type") == "file_search" for t in tools if isinstance(t, Mapping)):
                continue
            uid = parse_id("file", str(attachment.get("file_id", "")))
            if uid and uid not in found:
                found.append(uid)
    return found


class ThreadFiles:
    def __init__(self, stores: VectorStores, store: Store) -> None:
        self.stores = stores
        self.store = store

    async def attach(self, thread_id: str, messages: Sequence[MessageRecord]) -> None:
        file_ids = searched_files(messages)
        if not file_ids:
            return
        thread = await self.store.get_thread(thread_id)
        if thread is None:
            return
        ids = vector_store_ids(thread.tool_resources)
        if ids:
            target = ids[0]
        else:
            made = await self.stores.create(
                VectorStoreInput(name=f"thread {thread_id}", expires_after=THREAD_STORE_EXPIRY)
            )
            target = made.id
            resources = dict(thread.tool_resources or {})
            section = dict(resources.get("file_search") or {})
            section["vector_store_ids"] = [f"vs_{target}"]
            resources["file_search"] = section
            await self.store.update_thread(thread_id, {"tool_resources": resources})
        for file_id in file_ids:
            await self.stores.add_file(target, FileInput(file_id))
