"""Files the server keeps: images made by built-in tools (text_to_image, code_interpreter figures).

The bytes live in the store's ``files`` table next to their metadata, so a file is as durable as
the rest of the state (a SQLite file, or nothing with ``:memory:``) and goes when the thread that
made it is deleted. ``FileStore`` is the ``SaveFile`` the app gives its tools by default::

    files = FileStore(store)
    stored = await files(png_bytes, "image.png", "image/png")      # a StoredFile, id "file-..."
    record, data = await files.content(parse_id("file", stored.id))

Both dialects serve them (``routes/files.py``): OpenAI ``GET /v1/files/{id}`` and
``.../content``, DashScope ``GET /api/v1/files/{id}`` (``data`` with a ``url``) and ``.../content``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant_kit.server.ids import new_id, now_ms, render_id
from assistant_kit.server.store import THREAD_CHILDREN, Page, PageQuery, Store, Table
from assistant_kit.server.tools.base import SaveFile, StoredFile

#: The purpose of files a tool made (OpenAI's name for code interpreter outputs).
TOOL_OUTPUT = "assistants_output"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A stored file's metadata (the bytes are read apart, by ``FileStore.content``)."""

    id: str
    created_at: int
    filename: str
    purpose: str
    mime_type: str
    bytes: int
    thread_id: str | None = None
    run_id: str | None = None


FILES: Table[FileRecord] = Table("files", FileRecord)

if "files" not in THREAD_CHILDREN:
    THREAD_CHILDREN.append("files")


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

    async def save(
        self,
        data: bytes,
        filename: str,
        mime_type: str,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        purpose: str = TOOL_OUTPUT,
    ) -> StoredFile:
        record = FileRecord(
            id=new_id(),
            created_at=now_ms(),
            filename=Path(filename).name or "file",
            purpose=purpose,
            mime_type=mime_type or "application/octet-stream",
            bytes=len(data),
            thread_id=thread_id or None,
            run_id=run_id or None,
        )
        columns = (*FILES.columns, "data")
        with self.store.transaction() as db:
            db.execute(
                f"INSERT INTO files ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                (*FILES.to_row(record), bytes(data)),
            )
        return StoredFile(
            id=str(render_id("file", record.id, "openai")),
            filename=record.filename,
            mime_type=record.mime_type,
            size=record.bytes,
        )

    async def get(self, uid: str) -> FileRecord | None:
        return await self.store.get(FILES, uid)

    async def content(self, uid: str) -> tuple[FileRecord, bytes] | None:
        """The file's metadata and bytes, or None."""
        record = await self.get(uid)
        if record is None:
            return None
        with self.store._lock:
            row = self.store.db.execute("SELECT data FROM files WHERE id = ?", (uid,)).fetchone()
        if row is None:
            return None
        return record, bytes(row[0])

    async def delete(self, uid: str) -> bool:
        return await self.store.delete(FILES, uid)

    async def list(self, page: PageQuery) -> Page[FileRecord]:
        return await self.store.list_page(FILES, page)
