"""Files built-in tools make: kept in the store, served in both dialects, gone with their thread,
and shown in the reply that follows the tool call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant_kit.server.app import ServerConfig, create_app
from assistant_kit.server.files import FileStore
from assistant_kit.server.models import Rule, ScriptedBackend, ScriptedCall
from assistant_kit.server.tools.base import BuiltinTool, ToolContext, ToolOutput
from assistant_kit.server.tools.text_to_image import TextToImageTool

KEY = {"Authorization": "Bearer test-key"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Forgetful(BuiltinTool):
    """Records the threads it was told to forget (as the code interpreter stops their workers)."""

    type = "code_interpreter"

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def definition(self) -> Mapping[str, Any]:
        return {"name": "code_interpreter", "parameters": {"type": "object"}}

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        return ToolOutput("ok")

    async def forget_thread(self, thread_id: str) -> None:
        self.forgotten.append(thread_id)


RULES = [
    Rule(user="(?i)draw (.+)", tool_calls=(ScriptedCall("text_to_image", {"prompt": "{1}"}),)),
    Rule(after_tool="text_to_image", reply="Here it is: {output}"),
]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Forgetful]]:
    forgetful = Forgetful()
    tools = {"code_interpreter": forgetful, "text_to_image": TextToImageTool(width=64, height=64)}
    app = create_app(
        ServerConfig(
            database=tmp_path / "kit.db",
            api_keys=("test-key",),
            models={"default": ScriptedBackend(RULES)},
            tools=tools,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as http:
            yield http, app, forgetful


def file_store(app: Any) -> FileStore:
    files = app.state.context.files
    assert isinstance(files, FileStore)
    return files


@pytest.mark.anyio
async def test_a_saved_file_is_served_in_both_dialects(served: Any) -> None:
    http, app, _ = served
    stored = await file_store(app)(PNG, "sub/figure.png", "image/png")
    assert stored.id.startswith("file-") and stored.filename == "figure.png"

    meta = (await http.get(f"/v1/files/{stored.id}", headers=KEY)).json()
    assert meta["id"] == stored.id
    assert {k: meta[k] for k in ("object", "bytes", "filename", "purpose")} == {
        "object": "file",
        "bytes": len(PNG),
        "filename": "figure.png",
        "purpose": "assistants_output",
    }
    assert isinstance(meta["created_at"], int) and meta["created_at"] < 10**11  # seconds

    content = await http.get(f"/v1/files/{stored.id}/content", headers=KEY)
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/png"
    assert content.content == PNG

    ds_id = "file_" + stored.id.removeprefix("file-")
    ds = (await http.get(f"/api/v1/files/{ds_id}", headers=KEY)).json()
    assert ds["data"]["file_id"] == ds_id and ds["data"]["name"] == "figure.png"
    assert ds["data"]["url"] == f"http://kit/api/v1/files/{ds_id}/content"
    assert ds["data"]["created_at"] > 10**12  # milliseconds
    assert "request_id" in ds
    assert (await http.get(ds["data"]["url"], headers=KEY)).content == PNG

    listed = (await http.get("/v1/files", headers=KEY)).json()
    assert [f["id"] for f in listed["data"]] == [stored.id]
    gone = (await http.delete(f"/v1/files/{stored.id}", headers=KEY)).json()
    assert gone == {"id": stored.id, "object": "file", "deleted": True}
    assert (await http.get(f"/v1/files/{stored.id}/content", headers=KEY)).status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/v1/files/{id}",
        "/v1/files/{id}/content",
        "/api/v1/files/{id}",
        "/api/v1/files/{id}/content",
    ],
)
async def test_file_routes_need_the_key_and_a_known_id(served: Any, path: str) -> None:
    http, app, _ = served
    stored = await file_store(app)(PNG, "a.png", "image/png")
    assert (await http.get(path.format(id=stored.id))).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await http.get(path.format(id=stored.id), headers=wrong)).status_code == 401
    missing = "file-00000000-0000-4000-8000-000000000000"
    answer = await http.get(path.format(id=missing), headers=KEY)
    assert answer.status_code == 404
    assert (await http.get(path.format(id="file-nonsense"), headers=KEY)).status_code == 404


async def _run(http: httpx.AsyncClient, text: str) -> tuple[str, str]:
    bot = (
        await http.post(
            "/v1/assistants", headers=KEY, json={"model": "m", "tools": [{"type": "text_to_image"}]}
        )
    ).json()
    thread = (
        await http.post(
            "/v1/threads", headers=KEY, json={"messages": [{"role": "user", "content": text}]}
        )
    ).json()
    run = (
        await http.post(
            f"/v1/threads/{thread['id']}/runs", headers=KEY, json={"assistant_id": bot["id"]}
        )
    ).json()
    for _ in range(200):
        run = (await http.get(f"/v1/threads/{thread['id']}/runs/{run['id']}", headers=KEY)).json()
        if run["status"] not in ("queued", "in_progress"):
            break
        await asyncio.sleep(0.02)
    assert run["status"] == "completed", run
    return thread["id"], run["id"]


@pytest.mark.anyio
async def test_the_reply_after_an_image_tool_carries_the_image(served: Any) -> None:
    http, _, _ = served
    thread_id, _ = await _run(http, "Draw a ragdoll cat")
    messages = (await http.get(f"/v1/threads/{thread_id}/messages", headers=KEY)).json()["data"]
    reply = messages[0]
    text, image = reply["content"]
    assert text["type"] == "text" and text["text"]["value"].startswith("Here it is: ")
    assert image["type"] == "image_file"
    file_id = image["image_file"]["file_id"]
    assert file_id in text["text"]["value"]  # the model saw the id in the tool output
    png = await http.get(f"/v1/files/{file_id}/content", headers=KEY)
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert messages[1]["content"][0]["text"]["value"] == "Draw a ragdoll cat"  # user: text only

    ds_thread = "thread_" + thread_id.removeprefix("thread_")
    ds_messages = (await http.get(f"/api/v1/threads/{ds_thread}/messages", headers=KEY)).json()
    # dashscope 2.0.2 drops image_file.file_id: DashScope repeats it on the part
    assert ds_messages["data"][0]["content"][1] == {**image, "file_id": file_id}


@pytest.mark.anyio
async def test_deleting_a_thread_deletes_its_files_and_the_tools_forget_it(served: Any) -> None:
    http, app, forgetful = served
    thread_id, _ = await _run(http, "Draw a sunset")
    messages = (await http.get(f"/v1/threads/{thread_id}/messages", headers=KEY)).json()["data"]
    file_id = messages[0]["content"][1]["image_file"]["file_id"]
    assert (await http.get(f"/v1/files/{file_id}", headers=KEY)).status_code == 200

    assert (await http.delete(f"/v1/threads/{thread_id}", headers=KEY)).json()["deleted"]
    assert (await http.get(f"/v1/files/{file_id}", headers=KEY)).status_code == 404
    assert forgetful.forgotten == [thread_id.removeprefix("thread_")]
    kept = await file_store(app)(PNG, "unowned.png", "image/png")  # no thread: kept
    assert (await http.get(f"/v1/files/{kept.id}", headers=KEY)).status_code == 200


@pytest.mark.anyio
async def test_a_tool_registry_hears_of_deleted_threads_too(tmp_path: Path) -> None:
    from assistant_kit.server.tools.registry import ToolRegistry

    forgetful = Forgetful()
    app = create_app(
        ServerConfig(database=":memory:", api_keys=("test-key",), tools=ToolRegistry([forgetful]))
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as http:
            thread = (await http.post("/api/v1/threads", headers=KEY, content=b"")).json()
            await http.delete(f"/api/v1/threads/{thread['id']}", headers=KEY)
    assert forgetful.forgotten == [thread["id"].removeprefix("thread_")]
