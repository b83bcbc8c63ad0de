"""Files the server keeps: uploads (``POST /v1/files``) and what built-in tools make (images,
code interpreter outputs).

The bytes live in the store (``Store.insert_file``) next to their metadata, so a file is as
durable as the rest of the state (a SQLite file, or nothing with ``:memory:``) and goes when the
thread that made it is deleted. ``FileStore`` is the ``SaveFile`` the app gives its tools by
default::

    files = FileStore(store)
    stored = await files(png_bytes, "image.png", "image/png")      # a StoredFile, id "file-..."
    record, data = await files.content(parse_id("file", stored.id))

Both dialects serve them (``routes/files.py``): OpenAI ``GET /v1/files/{id}`` and
``.../content``, DashScope ``GET /api/v1/files/{id}`` (``data`` with a ``url``) and ``.../content``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant_kit.server.ids import file_ref, new_id, now_ms
from assistant_kit.server.store.base import Page, PageQuery, Store
from assistant_kit.server.store.records import FILES, FileRecord
from assistant_kit.server.tools.base import SaveFile, StoredFile

#: The purpose of files a tool made (OpenAI's name for code interpreter outputs).
TOOL_OUTPUT = "assistants_output"


class FileStore:
    """Keeps files in the store; calling it saves one (it is a ``SaveFile``).

    ``scoped(thread_id=..., run_id=...)`` gives the saver for one tool call, so the files it makes
    belong to that thread and go with it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def __call__(self, data: bytes, filename: str, mime_type: str) -> StoredFile:
        return await self.save(data, filename, mime_type)

    def scoped(self, *, thread_id: str | None, run_id: str | None) -> SaveFile:
        """The saver of one tool call: its files belong to ``thread_id``."""

        async def save(data: bytes, filename: str, mime_type: str) -> StoredFile:
            return await self.save(data, filename, mime_type, thread_id=thread_id, run_id=run_id)

        return save

    async def save(self, data: bytes, filename: str, mime_type: str, **where: Any) -> StoredFile:
        """Store a file (``where``: ``add``'s keywords) and return it as tools see it."""
        record = await self.add(data, filename, mime_type, **where)
        return StoredFile(
            id=file_ref(record.id),
            filename=record.filename,
            mime_type=record.mime_type,
            size=record.bytes,
        )

    async def add(
        self,
        data: bytes,
        filename: str,
        mime_type: str,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        purpose: str = TOOL_OUTPUT,
        expires_at: int | None = None,
    ) -> FileRecord:
        """Store a file and return its record."""
        record = FileRecord(
            id=new_id(),
            created_at=now_ms(),
            filename=Path(filename).name or "file",
            purpose=purpose,
            mime_type=mime_type or "application/octet-stream",
            bytes=len(data),
            thread_id=thread_id or None,
            run_id=run_id or None,
            expires_at=expires_at,
        )
        await self.store.insert_file(record, bytes(data))
        return record

    async def get(self, uid: str) -> FileRecord | None:
        """The file's record; ``None`` if there is none or it expired (it is deleted then)."""
        record = await self.store.get(FILES, uid)
        if record is not None and record.expires_at is not None and record.expires_at <= now_ms():
            await self.delete(uid)
            return None
        return record

    async def total_bytes(self) -> int:
        """The size of every stored file together."""
        every = await self.store.list_page(FILES, PageQuery(limit=1 << 40, order="asc"))
        return sum(f.bytes for f in every.items)

    async def content(self, uid: str) -> tuple[FileRecord, bytes] | None:
        """The file's metadata and bytes, or None."""
        record = await self.get(uid)
        if record is None:
            return None
        data = await self.store.file_content(uid)
        return None if data is None else (record, data)

    async def delete(self, uid: str) -> bool:
        return await self.store.delete(FILES, uid)

    async def list(self, page: PageQuery) -> Page[FileRecord]:
        return await self.store.list_page(FILES, page)
