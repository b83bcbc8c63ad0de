"""Vector stores over a real SQLite store: asynchronous ingestion with real statuses and counts,
failures per file, batches and cancelling, attributes, removal, and an index that survives a
restart of the server (a new store object on the same database file)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from documents_fixtures import pdf_bytes

from assistant_kit.errors import ApiError
from assistant_kit.server.files import FileStore
from assistant_kit.server.ids import parse_id
from assistant_kit.server.knowledge.chunking import ChunkingStrategy
from assistant_kit.server.knowledge.records import VECTOR_STORE_FILES
from assistant_kit.server.knowledge.vector_stores import (
    FileInput,
    VectorStoreInput,
    VectorStores,
)
from assistant_kit.server.store import open_store
from assistant_kit.server.store.base import PageQuery, Store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = open_store(tmp_path / "server.db")
    async with db.lifespan():
        yield db


async def _upload(store: Store, name: str, data: bytes) -> str:
    stored = await FileStore(store).save(data, name, "text/plain", purpose="assistants")
    uid = parse_id("file", stored.id)
    assert uid is not None
    return uid


async def test_ingest_search_and_counts(store: Store) -> None:
    stores = VectorStores(store)
    kettle = await _upload(store, "kettle.md", b"# Kettle\nDescale the kettle every month.")
    manual = await _upload(store, "oven.pdf", pdf_bytes("The oven bakes bread at 200 degrees."))
    photo = await _upload(store, "photo.png", b"\x89PNG...")
    vs = await stores.create(
        VectorStoreInput(
            name="docs", files=[FileInput(kettle), FileInput(manual), FileInput(photo)]
        )
    )
    assert stores.status(vs, await stores.summary(vs.id)) == "in_progress"
    await stores.idle()
    summary = await stores.summary(vs.id)
    assert summary.file_counts() == {
        "in_progress": 0,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
        "total": 3,
    }
    assert stores.status(vs, summary) == "completed"
    assert summary.usage_bytes > 0
    failed = await stores.get_file(vs.id, photo)
    assert failed.status == "failed"
    assert failed.last_error is not None and failed.last_error["code"] == "unsupported_file"
    hits = await stores.search([vs.id], "how often to descale the kettle", limit=3)
    assert hits[0].file_id == kettle and hits[0].filename == "kettle.md"
    pdf_hits = await stores.search([vs.id], "bakes bread")
    assert [h.filename for h in pdf_hits] == ["oven.pdf"]


async def test_index_survives_restart_and_updates_incrementally(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    async with db.lifespan():
        stores = VectorStores(db)
        a = await _upload(db, "a.txt", b"Penguins live in Antarctica.")
        vs = await stores.create(VectorStoreInput(files=[FileInput(a)]))
        await stores.idle()
        assert (await stores.search([vs.id], "penguins"))[0].file_id == a
    again = open_store(tmp_path / "s.db")
    async with again.lifespan():
        stores = VectorStores(again)
        assert (await stores.search([vs.id], "penguins"))[0].file_id == a
        b = await _upload(again, "b.txt", b"Camels cross the Sahara.")
        await stores.add_file(vs.id, FileInput(b, {"region": "africa"}))
        await stores.idle()
        assert (await stores.search([vs.id], "camels sahara"))[0].file_id == b
        only_africa = {"type": "eq", "key": "region", "value": "africa"}
        assert await stores.search([vs.id], "penguins", filters=only_africa) == []
        await stores.set_attributes(vs.id, a, {"region": "africa"})
        assert (await stores.search([vs.id], "penguins", filters=only_africa))[0].file_id == a
        await stores.remove_file(vs.id, a)
        assert await stores.search([vs.id], "penguins") == []
        with pytest.raises(ApiError) as e:
            await stores.get_file(vs.id, a)
        assert e.value.status == 404


async def test_unfinished_ingestion_resumes_after_restart(tmp_path: Path) -> None:
    db = open_store(tmp_path / "s.db")
    async with db.lifespan():
        stores = VectorStores(db)
        a = await _upload(db, "a.md", b"Owls hunt at night.")
        vs = await stores.create(VectorStoreInput())
        await stores.aclose()  # nothing running; now add while "crashing" before ingestion
        link = await stores.add_file(vs.id, FileInput(a))
        await stores.aclose()
        assert (await db.get(VECTOR_STORE_FILES, link.id)).status == "in_progress"  # type: ignore[union-attr]
    again = open_store(tmp_path / "s.db")
    async with again.lifespan():
        stores = VectorStores(again)
        assert await stores.resume() == 1
        await stores.idle()
        assert (await stores.get_file(vs.id, a)).status == "completed"
        assert (await stores.search([vs.id], "owls"))[0].file_id == a


async def test_batches_static_chunking_and_cancel(store: Store) -> None:
    stores = VectorStores(store, concurrency=1)
    text = " ".join(f"word{i}" for i in range(450)).encode()
    ids = [await _upload(store, f"f{i}.txt", text) for i in range(3)]
    vs = await stores.create(VectorStoreInput())
    static = ChunkingStrategy("static", 200, 0)
    batch = await stores.create_batch(vs.id, [FileInput(i, chunking_strategy=static) for i in ids])
    await stores.idle()
    summary = await stores.summary(vs.id, batch.id)
    assert summary.file_counts()["completed"] == 3
    assert stores.batch_status(batch, summary) == "completed"
    assert [c.tokens for c in await stores.file_chunks(vs.id, ids[0])] == [200, 200, 50]
    first = await stores.get_file(vs.id, ids[0])
    assert first.chunking_strategy == static.as_body()

    more = [await _upload(store, f"g{i}.txt", text) for i in range(3)]
    batch = await stores.create_batch(vs.id, [FileInput(i) for i in more])
    cancelled = await stores.cancel_batch(vs.id, batch.id)
    await stores.idle()
    summary = await stores.summary(vs.id, batch.id)
    assert stores.batch_status(cancelled, summary) == "cancelled"
    assert summary.counts.get("cancelled", 0) >= 1
    listed = await stores.list_files(vs.id, PageQuery(limit=100), status="cancelled")
    assert all(link.status == "cancelled" for link in listed.items) and listed.items


async def test_unknown_ids_are_404(store: Store) -> None:
    stores = VectorStores(store)
    with pytest.raises(ApiError) as e:
        await stores.create(
            VectorStoreInput(files=[FileInput("00000000-0000-4000-8000-000000000000")])
        )
    assert e.value.status == 404 and "No file found" in e.value.message
    with pytest.raises(ApiError) as e:
        await stores.get("00000000-0000-4000-8000-000000000000")
    assert e.value.status == 404


async def test_deleting_a_store_or_a_file_drops_its_chunks(store: Store) -> None:
    stores = VectorStores(store)
    a = await _upload(store, "a.txt", b"Bees make honey.")
    vs = await stores.create(VectorStoreInput(files=[FileInput(a)]))
    other = await stores.create(VectorStoreInput(files=[FileInput(a)]))
    await stores.idle()
    await stores.forget_file(a)
    assert await stores.search([vs.id, other.id], "bees honey") == []
    await stores.delete(vs.id)
    with pytest.raises(ApiError):
        await stores.get(vs.id)


async def test_search_falls_back_to_bm25_when_the_embeddings_endpoint_fails(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    from assistant_kit.server.knowledge.embeddings import Embedder, EmbeddingsConfig

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = await _upload(store, "a.txt", b"Bees make honey.")
    plain = VectorStores(store)
    vs = await plain.create(VectorStoreInput(files=[FileInput(a)]))
    await plain.idle()
    config = EmbeddingsConfig(f"http://127.0.0.1:{port}/v1", "m", timeout=2)
    with_dead_endpoint = VectorStores(store, Embedder(config))
    hits = await with_dead_endpoint.search([vs.id], "honey bees")
    assert hits and hits[0].file_id == a
    assert "falls back to BM25" in caplog.text and "could not be reached" in caplog.text
