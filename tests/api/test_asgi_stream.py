"""StreamingASGITransport: body chunks reach the client as the app sends them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant_kit.api.asgi_stream import StreamingASGITransport
from assistant_kit.api.base import AssistantParams, MessageParams
from assistant_kit.api.openai import OpenAIClient
from assistant_kit.api.runs import RunParams
from assistant_kit.server.app import ServerConfig, create_app
from assistant_kit.server.models.base import Finish, ModelEvent, ModelRequest, TextDelta
from assistant_kit.server.models.scripted import ScriptedBackend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Gated:
    """An ASGI app that sends one chunk, then waits for the test before sending the second."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.finished = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = await receive()
        assert request["type"] == "http.request"
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": request["body"], "more_body": True})

        async def watch() -> None:
            if (await receive())["type"] == "http.disconnect":
                self.disconnected.set()

        watcher = asyncio.ensure_future(watch())
        await self.gate.wait()
        await send({"type": "http.response.body", "body": b"second", "more_body": False})
        self.finished = True
        watcher.cancel()


async def boom(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise RuntimeError("the app broke")


@pytest.mark.anyio
async def test_first_chunk_arrives_before_the_app_sends_the_rest() -> None:
    app = Gated()
    transport = StreamingASGITransport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
        c.stream("POST", "/x", content=b"first") as response,
    ):
        assert (response.status_code, response.headers["x-a"]) == (201, "1")
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"first"
        assert not app.finished
        app.gate.set()
        assert [c async for c in chunks] == [b"second"]
    assert app.finished


@pytest.mark.anyio
async def test_closing_early_tells_the_app_the_client_is_gone() -> None:
    app = Gated()
    async with httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://t") as c:
        async with c.stream("POST", "/x", content=b"first") as response:
            assert await response.aiter_bytes().__anext__() == b"first"
        await asyncio.wait_for(app.disconnected.wait(), 5)
    assert not app.finished  # its handler was stopped


@pytest.mark.anyio
async def test_an_app_error_before_the_head_is_raised_to_the_caller() -> None:
    async with httpx.AsyncClient(transport=StreamingASGITransport(boom), base_url="http://t") as c:
        with pytest.raises(RuntimeError, match="the app broke"):
            await c.get("/")


class Gate(ScriptedBackend):
    """Says a word, then waits for the test before saying the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        yield TextDelta("Thinking")
        await self.gate.wait()
        yield TextDelta(" done.")
        yield Finish("stop")


@pytest.mark.anyio
async def test_a_run_on_the_in_process_server_streams_as_the_model_writes(tmp_path: Path) -> None:
    model = Gate()
    app = create_app(ServerConfig(database=tmp_path / "kit.db", models={"default": model}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=StreamingASGITransport(app), base_url="http://kit/v1", timeout=10
        ) as http,
    ):
        client = OpenAIClient(http, api_key="k")
        bot = await client.create_assistant(AssistantParams(model="m", name="b"))
        thread = await client.create_thread(messages=[MessageParams("hi")])
        events = client.stream_run(thread.id, RunParams(assistant_id=bot.id))
        seen = []
        async for event in events:
            seen.append(event.event)
            if event.event == "thread.message.delta":
                assert event.text == "Thinking"
                break
        assert "thread.run.completed" not in seen  # the first words came while the model waits
        model.gate.set()
        rest = [e async for e in events]
        assert "".join(e.text for e in rest) == " done."
        assert [e.event for e in rest][-2:] == ["thread.run.completed", "done"]
