"""Vector stores: their files, batches, asynchronous ingestion and search (dialect-neutral).

Adding a file stores an ``in_progress`` link at once and ingests it in the background (parse,
chunk, embed when configured, at most ``concurrency`` files at a time); the link then becomes
``completed`` with its ``usage_bytes``, or ``failed`` with a ``last_error``, never failing its
batch. Links still ``in_progress`` when the server stopped are ingested again by ``resume()``.
Each store's ``SearchIndex`` is built from its stored chunks at its first search and then kept
up to date as files come and go::

    stores = VectorStores(store, embedder=None)
    vs = await stores.create(VectorStoreInput(name="docs", file_ids=[file_uid]))
    await stores.idle()                          # tests and benches: wait for ingestion
    hits = await stores.search([vs.id], "how do I reset it", limit=5)
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant_kit.errors import ApiError
from assistant_kit.server.ids import new_id, now_ms
from assistant_kit.server.knowledge.chunking import ChunkingStrategy
from assistant_kit.server.knowledge.documents import DocumentError
from assistant_kit.server.knowledge.embeddings import Embedder, EmbeddingError
from assistant_kit.server.knowledge.index import Chunk, Hit, IndexedFile, SearchIndex
from assistant_kit.server.knowledge.ingest import chunks_of
from assistant_kit.server.knowledge.records import (
    FILE_BATCHES,
    VECTOR_STORE_CHUNKS,
    VECTOR_STORE_FILES,
    VECTOR_STORES,
    ChunksRecord,
    FileBatchRecord,
    VectorStoreFileRecord,
    VectorStoreRecord,
    link_id,
)
from assistant_kit.server.services import NotFound
from assistant_kit.server.store.base import Page, PageQuery, Store
from assistant_kit.server.store.records import FILES

log = logging.getLogger("assistant_kit.server.knowledge")

_DAY_MS = 86_400_000
#: How many links one read of a store's files may hold (counts, index loads).
_ALL = PageQuery(limit=1_000_000, order="asc")


@dataclass(frozen=True, slots=True)
class FileInput:
    """One file to add to a store: its neutral id, attributes and chunking strategy."""

    file_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    chunking_strategy: ChunkingStrategy | None = None


@dataclass(frozen=True, slots=True)
class VectorStoreInput:
    name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    expires_after: Mapping[str, Any] | None = None
    files: Sequence[FileInput] = ()
    chunking_strategy: ChunkingStrategy | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """What a store's (or batch's) files add up to."""

    counts: Mapping[str, int]
    usage_bytes: int

    @property
    def in_progress(self) -> bool:
        return self.counts.get("in_progress", 0) > 0

    def file_counts(self) -> dict[str, int]:
        keys = ("in_progress", "completed", "failed", "cancelled")
        counts = {k: self.counts.get(k, 0) for k in keys}
        return {**counts, "total": sum(counts.values())}


def expiry(expires_after: Mapping[str, Any] | None, anchor_ms: int) -> int | None:
    if not expires_after:
        return None
    return anchor_ms + int(expires_after["days"]) * _DAY_MS


class VectorStores:
    """The vector store operations the routes and ``file_search`` call."""

    def __init__(self, store: Store, embedder: Embedder | None = None, concurrency: int = 2):
        self.store = store
        self.embedder = embedder
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._indexes: dict[str, SearchIndex] = {}
        self._loading = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def resume(self) -> int:
        """Ingest again what a stopped server left ``in_progress``; returns how many."""
        page = await self.store.list_page(VECTOR_STORE_FILES, _ALL, {"status": "in_progress"})
        for link in page.items:
            self._spawn(link)
        return len(page.items)

    async def idle(self) -> None:
        """Wait until no file is being ingested."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def settled(self, uids: Sequence[str], timeout: float = 60.0) -> None:
        """Wait (at most ``timeout`` seconds) until no file of the stores ``uids`` is still
        being ingested, so that a search right after an upload sees it."""
        deadline = asyncio.get_running_loop().time() + timeout
        for uid in uids:
            while (await self.summary(uid)).in_progress:
                if asyncio.get_running_loop().time() >= deadline:
                    return
                await asyncio.sleep(0.05)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- stores ----------------------------------------------------------------------------

    async def create(self, given: VectorStoreInput) -> VectorStoreRecord:
        await self._check_files([f.file_id for f in given.files])
        now = now_ms()
        record = VectorStoreRecord(
            id=new_id(),
            created_at=now,
            name=given.name,
            metadata=dict(given.metadata),
            expires_after=dict(given.expires_after) if given.expires_after else None,
            expires_at=expiry(given.expires_after, now),
            last_active_at=now,
            chunking_strategy=_strategy_body(given.chunking_strategy),
        )
        await self.store.insert(VECTOR_STORES, record)
        for f in given.files:
            await self._link(record, f, None)
        return record

    async def get(self, uid: str) -> VectorStoreRecord:
        record = await self.store.get(VECTOR_STORES, uid)
        if record is None:
            raise NotFound("vector_store", uid)
        return record

    async def usable(self, uid: str) -> VectorStoreRecord:
        """The store, unless it expired (searching it or adding to it is then a 400)."""
        record = await self.get(uid)
        if record.expires_at is not None and record.expires_at <= now_ms():
            raise ApiError(400, "invalid_request", f"Vector store {uid} has expired.")
        return record

    async def list_stores(self, page: PageQuery) -> Page[VectorStoreRecord]:
        return await self.store.list_page(VECTOR_STORES, page)

    async def update(self, uid: str, changes: Mapping[str, Any]) -> VectorStoreRecord:
        record = await self.get(uid)
        changes = dict(changes)
        if "expires_after" in changes:
            anchor = record.last_active_at or record.created_at
            changes["expires_at"] = expiry(changes["expires_after"], anchor)
        updated = await self.store.update(VECTOR_STORES, uid, changes)
        if updated is None:
            raise NotFound("vector_store", uid)
        return updated

    async def delete(self, uid: str) -> None:
        await self.get(uid)
        links = await self.store.list_page(VECTOR_STORE_FILES, _ALL, {"vector_store_id": uid})
        for link in links.items:
            await self._unlink(link)
        batches = await self.store.list_page(FILE_BATCHES, _ALL, {"vector_store_id": uid})
        for batch in batches.items:
            await self.store.delete(FILE_BATCHES, batch.id)
        await self.store.delete(VECTOR_STORES, uid)
        self._indexes.pop(uid, None)

    def status(self, record: VectorStoreRecord, summary: Summary) -> str:
        if record.expires_at is not None and record.expires_at <= now_ms():
            return "expired"
        return "in_progress" if summary.in_progress else "completed"

    async def summary(self, uid: str, batch_id: str | None = None) -> Summary:
        filters = {"vector_store_id": uid}
        if batch_id is not None:
            filters["batch_id"] = batch_id
        links = (await self.store.list_page(VECTOR_STORE_FILES, _ALL, filters)).items
        return Summary(Counter(link.status for link in links), sum(x.usage_bytes for x in links))

    # -- files -----------------------------------------------------------------------------

    async def add_file(self, uid: str, given: FileInput) -> VectorStoreFileRecord:
        record = await self.usable(uid)
        await self._check_files([given.file_id])
        return await self._link(record, given, None)

    async def get_file(self, uid: str, file_id: str) -> VectorStoreFileRecord:
        await self.get(uid)
        link = await self.store.get(VECTOR_STORE_FILES, link_id(uid, file_id))
        if link is None:
            raise NotFound("file", file_id)
        return link

    async def list_files(
        self, uid: str, page: PageQuery, *, status: str | None = None, batch_id: str | None = None
    ) -> Page[VectorStoreFileRecord]:
        await self.get(uid)
        filters: dict[str, Any] = {"vector_store_id": uid}
        if status is not None:
            filters["status"] = status
        if batch_id is not None:
            filters["batch_id"] = batch_id
        cursor = PageQuery(
            page.limit,
            page.order,
            link_id(uid, page.after) if page.after else None,
            link_id(uid, page.before) if page.before else None,
        )
        return await self.store.list_page(VECTOR_STORE_FILES, cursor, filters)

    async def set_attributes(
        self, uid: str, file_id: str, attributes: Mapping[str, Any]
    ) -> VectorStoreFileRecord:
        link = await self.get_file(uid, file_id)
        updated = await self.store.update(
            VECTOR_STORE_FILES, link.id, {"attributes": dict(attributes)}
        )
        if updated is None:
            raise NotFound("file", file_id)
        if uid in self._indexes:
            self._indexes[uid].set_attributes(file_id, attributes)
        return updated

    async def remove_file(self, uid: str, file_id: str) -> None:
        await self._unlink(await self.get_file(uid, file_id))

    async def file_chunks(self, uid: str, file_id: str) -> list[Chunk]:
        link = await self.get_file(uid, file_id)
        row = await self.store.get(VECTOR_STORE_CHUNKS, link.id)
        return [] if row is None else _chunks(row)

    async def forget_file(self, file_id: str) -> None:
        """A server file was deleted: take it out of every store."""
        links = await self.store.list_page(VECTOR_STORE_FILES, _ALL, {"file_id": file_id})
        for link in links.items:
            await self._unlink(link)

    # -- batches ---------------------------------------------------------------------------

    async def create_batch(self, uid: str, files: Sequence[FileInput]) -> FileBatchRecord:
        record = await self.usable(uid)
        await self._check_files([f.file_id for f in files])
        batch = FileBatchRecord(new_id(), now_ms(), uid, "in_progress", [f.file_id for f in files])
        await self.store.insert(FILE_BATCHES, batch)
        for f in files:
            await self._link(record, f, batch.id)
        return batch

    async def get_batch(self, uid: str, batch_id: str) -> FileBatchRecord:
        batch = await self.store.get(FILE_BATCHES, batch_id, vector_store_id=uid)
        if batch is None:
            raise NotFound("file_batch", batch_id)
        return batch

    async def cancel_batch(self, uid: str, batch_id: str) -> FileBatchRecord:
        batch = await self.get_batch(uid, batch_id)
        pending = await self.list_files(uid, _ALL, status="in_progress", batch_id=batch_id)
        for link in pending.items:
            await self.store.update(
                VECTOR_STORE_FILES,
                link.id,
                {"status": "cancelled"},
                expect={"status": "in_progress"},
            )
        updated = await self.store.update(FILE_BATCHES, batch.id, {"status": "cancelled"})
        return updated or batch

    def batch_status(self, batch: FileBatchRecord, summary: Summary) -> str:
        if batch.status == "cancelled":
            return "cancelled"
        if summary.in_progress:
            return "in_progress"
        return "failed" if summary.counts.get("failed") == len(batch.file_ids) else "completed"

    # -- search ----------------------------------------------------------------------------

    async def search(
        self,
        uids: Sequence[str],
        query: str,
        *,
        limit: int = 10,
        score_threshold: float = 0.0,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """The best ``limit`` chunks of all the stores ``uids``, best first."""
        vector = await self._query_vector(query)
        hits: list[Hit] = []
        for uid in uids:
            index = await self._index(uid)
            found = await asyncio.to_thread(
                index.search,
                query,
                limit=limit,
                score_threshold=score_threshold,
                filters=filters,
                query_vector=vector,
            )
            hits.extend(found)
            await self.store.update(VECTOR_STORES, uid, {"last_active_at": now_ms()})
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:limit]

    async def _query_vector(self, query: str) -> list[float] | None:
        if self.embedder is None or not query.strip():
            return None
        try:
            return (await self.embedder.embed([query]))[0]
        except EmbeddingError as e:
            log.warning("search falls back to BM25 alone: %s", e)
            return None

    async def _index(self, uid: str) -> SearchIndex:
        async with self._loading:
            index = self._indexes.get(uid)
            if index is not None:
                return index
            rows = await self.store.list_page(VECTOR_STORE_CHUNKS, _ALL, {"vector_store_id": uid})
            links = await self.store.list_page(
                VECTOR_STORE_FILES, _ALL, {"vector_store_id": uid, "status": "completed"}
            )
            names = await self._filenames([link.file_id for link in links.items])
            attributes = {link.file_id: link.attributes for link in links.items}
            files = [
                IndexedFile(r.file_id, names.get(r.file_id, ""), attributes[r.file_id], _chunks(r))
                for r in rows.items
                if r.file_id in attributes
            ]
            index = await asyncio.to_thread(SearchIndex, files)
            self._indexes[uid] = index
            return index

    # -- ingestion -------------------------------------------------------------------------

    async def _check_files(self, file_ids: Sequence[str]) -> None:
        for file_id in file_ids:
            if await self.store.get(FILES, file_id) is None:
                raise NotFound("file", file_id)

    async def _filenames(self, file_ids: Sequence[str]) -> dict[str, str]:
        names = {}
        for file_id in file_ids:
            record = await self.store.get(FILES, file_id)
            if record is not None:
                names[file_id] = record.filename
        return names

    async def _link(
        self, record: VectorStoreRecord, given: FileInput, batch_id: str | None
    ) -> VectorStoreFileRecord:
        strategy = given.chunking_strategy
        body = _strategy_body(strategy) if strategy else record.chunking_strategy
        link = VectorStoreFileRecord(
            id=link_id(record.id, given.file_id),
            created_at=now_ms(),
            vector_store_id=record.id,
            file_id=given.file_id,
            attributes=dict(given.attributes),
            chunking_strategy=body or ChunkingStrategy().as_body(),
            batch_id=batch_id,
        )
        existing = await self.store.get(VECTOR_STORE_FILES, link.id)
        if existing is not None:
            await self._unlink(existing)
        await self.store.insert(VECTOR_STORE_FILES, link)
        self._spawn(link)
        return link

    async def _unlink(self, link: VectorStoreFileRecord) -> None:
        await self.store.delete(VECTOR_STORE_FILES, link.id)
        await self.store.delete(VECTOR_STORE_CHUNKS, link.id)
        if link.vector_store_id in self._indexes:
            self._indexes[link.vector_store_id].remove(link.file_id)

    def _spawn(self, link: VectorStoreFileRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._ingest(link))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ingestion task failed", exc_info=task.exception())

    async def _ingest(self, link: VectorStoreFileRecord) -> None:
        async with self._slots:
            try:
                chunks = await self._chunks_of(link)
            except DocumentError as e:
                await self._fail(link, e.code, e.message)
                return
            except EmbeddingError as e:
                await self._fail(link, "server_error", str(e))
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a parser bug must fail the file, not the server
                log.exception("ingesting file %s failed", link.file_id)
                await self._fail(link, "server_error", f"ingestion failed: {e}")
                return
            if not await self._current(link):
                return
            await self.store.delete(VECTOR_STORE_CHUNKS, link.id)
            row = ChunksRecord(
                link.id,
                now_ms(),
                link.vector_store_id,
                link.file_id,
                [[c.text, c.tokens, c.embedding] for c in chunks],
            )
            await self.store.insert(VECTOR_STORE_CHUNKS, row)
            usage = sum(len(c.text.encode()) for c in chunks)
            done = await self.store.update(
                VECTOR_STORE_FILES,
                link.id,
                {"status": "completed", "usage_bytes": usage},
                expect={"status": "in_progress"},
            )
            if done is None:  # cancelled or removed meanwhile
                await self.store.delete(VECTOR_STORE_CHUNKS, link.id)
                return
            index = self._indexes.get(link.vector_store_id)
            if index is not None:
                names = await self._filenames([link.file_id])
                indexed = IndexedFile(
                    link.file_id, names.get(link.file_id, ""), done.attributes, chunks
                )
                await asyncio.to_thread(index.add, indexed)

    async def _chunks_of(self, link: VectorStoreFileRecord) -> list[Chunk]:
        record = await self.store.get(FILES, link.file_id)
        data = await self.store.file_content(link.file_id)
        if record is None or data is None:
            raise DocumentError("invalid_file", f"file {link.file_id} no longer exists")
        strategy = ChunkingStrategy.from_body(link.chunking_strategy)
        return await chunks_of(record.filename, data, strategy, self.embedder)

    async def _current(self, link: VectorStoreFileRecord) -> bool:
        """Whether ``link`` is still the stored version of its row (not re-added meanwhile)."""
        row = await self.store.get(VECTOR_STORE_FILES, link.id)
        return row is not None and row.created_at == link.created_at

    async def _fail(self, link: VectorStoreFileRecord, code: str, message: str) -> None:
        if await self._current(link):
            await self.store.update(
                VECTOR_STORE_FILES,
                link.id,
                {"status": "failed", "last_error": {"code": code, "message": message}},
                expect={"status": "in_progress"},
            )


def _strategy_body(strategy: ChunkingStrategy | None) -> dict[str, Any] | None:
    return None if strategy is None else strategy.as_body()


def _chunks(row: ChunksRecord) -> list[Chunk]:
    return [Chunk(i, text, tokens, vector) for i, (text, tokens, vector) in enumerate(row.chunks)]
