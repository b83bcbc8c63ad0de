"""The openai backend keeps one connection for sequential calls: a keep-alive loopback
chat-completions server counts the TCP connections it accepts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from assistant_kit.server.models.base import ChatMessage, Finish, ModelRequest, TextDelta
from assistant_kit.server.models.openai import OpenAIChatBackend

pytestmark = pytest.mark.anyio

CALLS = 50


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class KeepAliveServer:
    """HTTP/1.1 with keep-alive: each reply is chunked (SSE) or has a Content-Length, and the
    connection stays open for the next request."""

    url: str = ""
    connections: int = 0
    requests: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while request_line := await reader.readline():
                headers: dict[str, str] = {}
                while line := (await reader.readline()).decode().strip():
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = json.loads(await reader.readexactly(int(headers["content-length"])))
                self.requests += 1
                assert request_line.split()[1] == b"/v1/chat/completions"
                if body.get("stream"):
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                        b"transfer-encoding: chunked\r\n\r\n"
                    )
                    for piece in ("Hello", " there"):
                        chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                        self._chunk(writer, f"data: {json.dumps(chunk)}\n\n".encode())
                    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self._chunk(writer, f"data: {json.dumps(done)}\n\n".encode())
                    self._chunk(writer, b"data: [DONE]\n\n")
                    writer.write(b"0\r\n\r\n")
                else:
                    reply = json.dumps(
                        {
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": "Hello there"},
                                    "finish_reason": "stop",
                                }
                            ]
                        }
                    ).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        + f"content-length: {len(reply)}\r\n\r\n".encode()
                        + reply
                    )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


@contextlib.asynccontextmanager
async def keep_alive_server() -> AsyncIterator[KeepAliveServer]:
    state = KeepAliveServer()
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await state.serve(reader, writer)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_fifty_sequential_calls_use_one_connection(stream: bool) -> None:
    request = ModelRequest(model="m", messages=(ChatMessage("user", "hi"),))
    async with keep_alive_server() as server:
        backend = OpenAIChatBackend(server.url, stream=stream)
        try:
            for _ in range(CALLS):
                events = [event async for event in backend.stream(request)]
                assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there"
                assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
        finally:
            await backend.aclose()
    assert server.requests == CALLS
    assert server.connections == 1
