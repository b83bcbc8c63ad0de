"""StreamingASGITransport: body chunks reach the client as the app sends them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from assistant_kit.api.asgi_stream import StreamingASGITransport


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
