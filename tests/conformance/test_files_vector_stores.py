"""Files and vector stores through the official openai SDK against a real ``kit serve``.

Uploads (multipart, purposes, expiry, limits), list/retrieve/content/delete, vector stores with
asynchronous ingestion (real statuses and file counts), files and batches with the SDK's poll
helpers, search with filters and thresholds, and an index that survives a server restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from kit_server import KitServer, running_kit_server, stop
from openai import OpenAI

pytestmark = pytest.mark.slow


@pytest.fixture
def openai_sdk(kit_server: KitServer) -> Iterator[OpenAI]:
    """The SDK in strict mode: every response must match its models exactly."""
    client = OpenAI(
        base_url=kit_server.openai_url,
        api_key=kit_server.api_key,
        max_retries=0,
        _strict_response_validation=True,
    )
    yield client
    client.close()


KETTLE = b"# Kettle\n\nDescale the kettle every month with citric acid. The kettle boils water."
TOASTER = b"# Toaster\n\nEmpty the crumb tray of the toaster every week. It browns bread."


def _upload(client: OpenAI, name: str, data: bytes) -> Any:
    return client.files.create(file=(name, data), purpose="assistants")


def _wait(client: OpenAI, vector_store_id: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vs = client.vector_stores.retrieve(vector_store_id)
        if vs.status != "in_progress":
            return vs
        time.sleep(0.05)
    raise AssertionError(f"vector store {vector_store_id} still in progress")


def test_file_upload_list_retrieve_content_delete(openai_sdk: OpenAI) -> None:
    client = openai_sdk
    created = client.files.create(
        file=("notes.md", b"# Notes\nhello"),
        purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert created.id.startswith("file-") and created.object == "file"
    assert (created.filename, created.bytes, created.purpose) == ("notes.md", 13, "assistants")
    assert created.expires_at == created.created_at + 3600
    assert client.files.retrieve(created.id).filename == "notes.md"
    assert created.id in [f.id for f in client.files.list(limit=100)]
    assert client.files.content(created.id).content == b"# Notes\nhello"
    assert client.files.delete(created.id).deleted is True
    with pytest.raises(openai.NotFoundError, match="No file found"):
        client.files.retrieve(created.id)


def test_upload_errors_are_clear(openai_sdk: OpenAI, kit_server: KitServer) -> None:
    with pytest.raises(openai.BadRequestError, match="Invalid 'purpose'"):
        openai_sdk.files.create(file=("a.txt", b"x"), purpose="nonsense")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="expires_after"):
        openai_sdk.files.create(
            file=("a.txt", b"x"),
            purpose="assistants",
            expires_after={"anchor": "created_at", "seconds": 5},
        )
    import httpx

    headers = {"Authorization": f"Bearer {kit_server.api_key}"}
    no_file = httpx.post(
        f"{kit_server.openai_url}/files",
        data={"purpose": "assistants"},
        headers=headers,
        files={"other": ("a.txt", b"x")},
    )
    assert no_file.status_code == 400
    assert no_file.json()["error"]["message"] == "Missing required parameter: 'file'."
    as_json = httpx.post(f"{kit_server.openai_url}/files", json={}, headers=headers)
    assert as_json.status_code == 415 and "multipart/form-data" in as_json.text


def test_file_size_limits(tmp_path: Path) -> None:
    (tmp_path / "kit.yaml").write_text(
        "server:\n  files: {max_bytes: 1000, total_bytes: 1500}\n", encoding="utf-8"
    )
    with running_kit_server(output_dir=tmp_path) as server:
        client = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as big:
            client.files.create(file=("big.txt", b"x" * 1001), purpose="assistants")
        assert big.value.status_code == 413
        assert "limit of 1000 bytes" in big.value.message
        client.files.create(file=("a.txt", b"x" * 1000), purpose="assistants")
        with pytest.raises(openai.APIStatusError) as full:
            client.files.create(file=("b.txt", b"x" * 600), purpose="assistants")
        assert full.value.status_code == 507 and "1000 of 1500 bytes" in full.value.message


def test_vector_store_ingests_and_searches(openai_sdk: OpenAI) -> None:
    client = openai_sdk
    kettle = _upload(client, "kettle.md", KETTLE)
    photo = _upload(client, "photo.png", b"\x89PNG\r\n")
    vs = client.vector_stores.create(
        name="appliances", file_ids=[kettle.id, photo.id], metadata={"team": "docs"}
    )
    assert vs.id.startswith("vs_") and vs.name == "appliances"
    done = _wait(client, vs.id)
    assert done.status == "completed"
    counts = done.file_counts
    assert (counts.completed, counts.failed, counts.total) == (1, 1, 2)
    assert done.usage_bytes > 0 and done.metadata == {"team": "docs"}
    failed = client.vector_stores.files.retrieve(photo.id, vector_store_id=vs.id)
    assert failed.status == "failed" and failed.last_error is not None
    assert failed.last_error.code == "unsupported_file"
    listed = client.vector_stores.files.list(vs.id, filter="completed")
    assert [f.id for f in listed] == [kettle.id]

    toaster = client.vector_stores.files.create_and_poll(
        vector_store_id=vs.id,
        file_id=_upload(client, "toaster.md", TOASTER).id,
        attributes={"room": "kitchen", "year": 2024},
    )
    assert toaster.status == "completed" and toaster.attributes == {"room": "kitchen", "year": 2024}

    page = client.vector_stores.search(vs.id, query="how often should I descale the kettle")
    first = page.data[0]
    assert (first.file_id, first.filename) == (kettle.id, "kettle.md")
    assert "citric acid" in first.content[0].text and 0 < first.score < 1
    only_2024 = client.vector_stores.search(
        vs.id,
        query="kettle toaster",
        filters={"type": "gte", "key": "year", "value": 2024},
    )
    assert {r.file_id for r in only_2024.data} == {toaster.id}
    strict = client.vector_stores.search(
        vs.id, query="kettle", ranking_options={"score_threshold": 0.99}
    )
    assert strict.data == []

    updated = client.vector_stores.files.update(
        file_id=toaster.id, vector_store_id=vs.id, attributes={"year": 2020}
    )
    assert updated.attributes == {"year": 2020}
    content = client.vector_stores.files.content(file_id=kettle.id, vector_store_id=vs.id)
    assert "citric acid" in "".join(c.text or "" for c in content)
    assert client.vector_stores.files.delete(file_id=kettle.id, vector_store_id=vs.id).deleted
    after = client.vector_stores.search(vs.id, query="descale kettle citric")
    assert kettle.id not in {r.file_id for r in after.data}
    assert client.vector_stores.update(vs.id, name="renamed").name == "renamed"
    assert vs.id in [v.id for v in client.vector_stores.list(limit=100)]
    assert client.vector_stores.delete(vs.id).deleted
    with pytest.raises(openai.NotFoundError, match=f"No vector_store found with id '{vs.id}'"):
        client.vector_stores.retrieve(vs.id)


def test_file_batches(openai_sdk: OpenAI) -> None:
    client = openai_sdk
    ids = [
        _upload(client, f"doc{i}.txt", f"Document number {i} about owls.".encode()).id
        for i in range(3)
    ]
    vs = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=vs.id,
        file_ids=ids,
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 10},
        },
    )
    assert batch.id.startswith("vsfb_") and batch.status == "completed"
    assert batch.file_counts.completed == 3
    files = client.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=vs.id)
    assert sorted(f.id for f in files) == sorted(ids)
    strategy = next(iter(files)).chunking_strategy
    assert strategy is not None and strategy.static.max_chunk_size_tokens == 100  # type: ignore[union-attr]
    again = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=vs.id)
    assert again.status == "completed"


def test_unknown_and_malformed_ids(openai_sdk: OpenAI) -> None:
    client = openai_sdk
    with pytest.raises(openai.NotFoundError, match="No file found"):
        client.vector_stores.create(file_ids=["file-00000000-0000-4000-8000-000000000000"])
    with pytest.raises(openai.BadRequestError, match="is not a file id"):
        client.vector_stores.create(file_ids=["nope"])
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search("vs_00000000-0000-4000-8000-000000000000", query="x")
    vs = client.vector_stores.create()
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(openai.NotFoundError, match=f"No file_batch found with id 'vsfb_{missing}'"):
        client.vector_stores.file_batches.retrieve("vsfb_" + missing, vector_store_id=vs.id)
    with pytest.raises(openai.NotFoundError, match=f"No file found with id 'file-{missing}'"):
        client.vector_stores.files.retrieve("file-" + missing, vector_store_id=vs.id)
    with pytest.raises(openai.BadRequestError, match="chunk_overlap_tokens"):
        client.vector_stores.file_batches.create(
            vector_store_id=vs.id,
            file_ids=[_upload(client, "a.txt", b"a").id],
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 90},
            },
        )
    with pytest.raises(openai.BadRequestError, match="filters"):
        client.vector_stores.search(vs.id, query="x", filters={"type": "like"})  # type: ignore[arg-type]


def test_index_survives_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "server.db")
    with running_kit_server(database=db, output_dir=tmp_path) as server:
        client = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
        kettle = _upload(client, "kettle.md", KETTLE)
        vs = client.vector_stores.create(file_ids=[kettle.id])
        assert _wait(client, vs.id).file_counts.completed == 1
        stop(server)
    with running_kit_server(database=db, output_dir=tmp_path) as server:
        client = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
        hits = client.vector_stores.search(vs.id, query="descale kettle")
        assert hits.data[0].file_id == kettle.id


def test_tool_resources_name_only_existing_stores_and_files(openai_sdk: OpenAI) -> None:
    client = openai_sdk
    missing_vs = "vs_00000000-0000-4000-8000-000000000000"
    with pytest.raises(openai.NotFoundError, match=f"No vector_store found with id '{missing_vs}'"):
        client.beta.assistants.create(
            model="m", tool_resources={"file_search": {"vector_store_ids": [missing_vs]}}
        )
    with pytest.raises(openai.BadRequestError, match="is not a vector_store id"):
        client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": ["x"]}})
    missing_file = "file-00000000-0000-4000-8000-000000000000"
    with pytest.raises(openai.NotFoundError, match="No file found"):
        client.beta.assistants.create(
            model="m", tool_resources={"code_interpreter": {"file_ids": [missing_file]}}
        )
    vs = client.vector_stores.create()
    assistant = client.beta.assistants.create(
        model="m", tool_resources={"file_search": {"vector_store_ids": [vs.id]}}
    )
    assert assistant.tool_resources.file_search.vector_store_ids == [vs.id]  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.update(
            assistant.id, tool_resources={"file_search": {"vector_store_ids": [missing_vs]}}
        )


def test_uploads_in_parts(openai_sdk: OpenAI, tmp_path: Path) -> None:
    client = openai_sdk
    path = tmp_path / "big.md"
    data = b"# Big\n" + b"owls hunt at night. " * 5000
    path.write_bytes(data)
    upload = client.uploads.upload_file_chunked(
        file=path, mime_type="text/markdown", purpose="assistants", part_size=30_000
    )
    assert upload.status == "completed" and upload.id.startswith("upload_")
    assert upload.file is not None and upload.file.bytes == len(data)
    assert client.files.content(upload.file.id).content == data

    started = client.uploads.create(
        bytes=3, filename="x.txt", mime_type="text/plain", purpose="assistants"
    )
    part = client.uploads.parts.create(started.id, data=b"ab")
    with pytest.raises(openai.BadRequestError, match="hold 2 bytes"):
        client.uploads.complete(started.id, part_ids=[part.id])
    assert client.uploads.cancel(started.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError, match="is cancelled"):
        client.uploads.parts.create(started.id, data=b"c")
