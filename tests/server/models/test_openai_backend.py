"""OpenAIChatBackend against a real chat-completions server on loopback.

The server below is a few dozen lines of asyncio speaking HTTP/1.1, so each test decides exactly
which bytes come back: clean streams, the messy tool-call deltas real servers send, errors, stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from assistant_kit.errors import ModelError
from assistant_kit.server.models.base import (
    ChatMessage,
    Finish,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from assistant_kit.server.models.openai import OpenAIChatBackend

pytestmark = pytest.mark.anyio

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the loopback chat-completions server -------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON value
    events: list[Any] | None = None  # SSE: dicts become `data: {json}`, strings are sent raw
    raw: bytes | None = None
    wire: bytes | None = None  # the whole response, status line and headers included
    stall: float = 0.0  # seconds to wait before answering
    content_type: str | None = None


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Handler = Callable[[Seen], Reply]


@dataclass
class ChatServer:
    handler: Handler
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    #: Keep each connection open for the next request (chunked or sized bodies); else close it.
    keep_alive: bool = False
    #: TCP connections accepted.
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while request_line := (await reader.readline()).decode():
                headers: dict[str, str] = {}
                while line := (await reader.readline()).decode().strip():
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen = Seen(request_line.split()[1], headers, json.loads(body or b"{}"))
                self.seen.append(seen)
                reply = self.handler(seen)
                if reply.stall:
                    await asyncio.sleep(reply.stall)
                if reply.wire is not None:  # the exact bytes, head included
                    writer.write(reply.wire)
                    await writer.drain()
                    break
                writer.write(self.head(reply))
                for piece in self.pieces(reply):
                    writer.write(
                        f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                        if self.chunked(reply)
                        else piece
                    )
                    await writer.drain()
                if self.chunked(reply):
                    writer.write(b"0\r\n\r\n")
                await writer.drain()
                if not self.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def chunked(self, reply: Reply) -> bool:
        return self.keep_alive and reply.events is not None and reply.raw is None

    @staticmethod
    def pieces(reply: Reply) -> list[bytes]:
        if reply.raw is not None:
            return [reply.raw]
        if reply.events is not None:
            return [
                (event if isinstance(event, str) else f"data: {json.dumps(event)}\n\n").encode()
                for event in reply.events
            ]
        return [json.dumps(reply.body).encode()]

    def head(self, reply: Reply) -> bytes:
        kind = reply.content_type or (
            "text/event-stream" if reply.events is not None else "application/json"
        )
        if not self.keep_alive:
            framing = "connection: close"
        elif self.chunked(reply):
            framing = "transfer-encoding: chunked"
        else:
            framing = f"content-length: {sum(len(p) for p in self.pieces(reply))}"
        return f"HTTP/1.1 {reply.status} X\r\ncontent-type: {kind}\r\n{framing}\r\n\r\n".encode()


@contextlib.asynccontextmanager
async def chat_server(handler: Handler, *, keep_alive: bool = False) -> AsyncIterator[ChatServer]:
    state = ChatServer(handler, keep_alive=keep_alive)
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
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]}


def stream_of(*chunks: Any, usage: dict[str, int] | None = None) -> Reply:
    events: list[Any] = list(chunks)
    if usage:
        events.append({"id": "chatcmpl-1", "choices": [], "usage": usage})
    events.append("data: [DONE]\n\n")
    return Reply(events=events)


def completion(message: dict[str, Any], finish: str = "stop", usage: Any = None) -> Reply:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
    }
    if usage:
        body["usage"] = usage
    return Reply(body=body)


def ask(text: str = "Weather in Paris?", **kwargs: Any) -> ModelRequest:
    return ModelRequest(model="qwen-max", messages=(ChatMessage("user", text),), **kwargs)


async def collect(backend: OpenAIChatBackend, request: ModelRequest) -> list[ModelEvent]:
    try:
        return [event async for event in backend.stream(request)]
    finally:
        await backend.aclose()


def tool_calls(events: list[ModelEvent]) -> list[ToolCall]:
    """Rebuild calls from clean fragments, checking the contract as it goes."""
    calls: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            if e.name is not None:
                assert e.index not in calls, "name only in the first fragment"
                assert e.id, "the first fragment carries the id"
                calls[e.index] = [e.id, e.name, ""]
            else:
                assert e.index in calls and e.id is None
            calls[e.index][2] += e.arguments
    assert sorted(calls) == list(range(len(calls)))
    return [ToolCall(*calls[i]) for i in sorted(calls)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finish_of(events: list[ModelEvent]) -> Finish:
    assert isinstance(events[-1], Finish)
    assert sum(isinstance(e, Finish) for e in events) == 1
    return events[-1]


# --- text ---------------------------------------------------------------------------------


async def test_streams_text_fragments_and_reports_usage() -> None:
    reply = stream_of(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello"}),
        chunk({"content": ", world"}),
        chunk({}, "stop"),
        usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    )
    async with chat_server(lambda seen: reply) as server:
        events = await collect(OpenAIChatBackend(server.url), ask())
    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("Hello"),
        TextDelta(", world"),
    ]
    assert finish_of(events) == Finish("stop", Usage(11, 3))
    [seen] = server.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.body["stream"] is True
    assert seen.body["stream_options"] == {"include_usage": True}
    assert seen.body["messages"] == [{"role": "user", "content": "Weather in Paris?"}]


async def test_usage_is_estimated_when_the_server_sends_none() -> None:
    reply = stream_of(chunk({"content": "abcdefgh"}), chunk({}, "stop"))
    async with chat_server(lambda seen: reply) as server:
        backend = OpenAIChatBackend(server.url, stream_usage=False)
        events = await collect(backend, ask())
    assert "stream_options" not in server.seen[0].body
    assert finish_of(events).usage == Usage(backend.count_tokens(ask().messages), 2)


async def test_length_finish_is_kept() -> None:
    reply = stream_of(chunk({"content": "cut"}), chunk({}, "length"))
    async with chat_server(lambda seen: reply) as server:
        events = await collect(OpenAIChatBackend(server.url), ask(max_tokens=1))
    assert finish_of(events).reason == "length"
    assert server.seen[0].body["max_tokens"] == 1


async def test_sse_without_spaces_or_blank_lines_and_with_comments() -> None:
    raw = (
        ": keep-alive\n"
        f"data:{json.dumps(chunk({'content': 'a'}))}\n"
        f"data:{json.dumps(chunk({'content': 'b'}))}\n"
        "\n"
        f"data: {json.dumps(chunk({}, 'stop'))}\n\n"
        "data: [DONE]\n\n"
    )
    async with chat_server(lambda seen: Reply(events=[raw])) as server:
        events = await collect(OpenAIChatBackend(server.url), ask())
    assert text_of(events) == "ab"
    assert finish_of(events).reason == "stop"


async def test_a_server_that_ignores_stream_true_still_works() -> None:
    reply = completion({"content": "whole"}, usage={"prompt_tokens": 2, "completion_tokens": 1})
    async with chat_server(lambda seen: reply) as server:
        events = await collect(OpenAIChatBackend(server.url), ask())
    assert text_of(events) == "whole"
    assert finish_of(events) == Finish("stop", Usage(2, 1))


# --- the request body -----------------------------------------------------------------------


async def test_request_maps_model_transcript_tools_and_settings() -> None:
    call = ToolCall("call_9", "get_weather", '{"city": "Paris"}')
    request = ModelRequest(
        model="qwen-max",
        messages=(
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "sunny", tool_call_id="call_9"),
        ),
        tools=(WEATHER,),
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        response_format={"type": "json_object"},
    )
    reply = stream_of(chunk({"content": "ok"}), chunk({}, "stop"))
    async with chat_server(lambda seen: reply) as server:
        await collect(OpenAIChatBackend(server.url, models={"qwen-max": "qwen2.5:7b"}), request)
    body = server.seen[0].body
    assert body["model"] == "qwen2.5:7b"
    assert body["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert body["messages"][3] == {"role": "tool", "content": "sunny", "tool_call_id": "call_9"}
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.2, 0.9, 7)
    assert body["response_format"] == {"type": "json_object"}
    assert "top_k" not in body and "max_tokens" not in body


async def test_api_key_comes_from_the_named_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_MODEL_KEY", "sk-secret-123")
    reply = stream_of(chunk({"content": "ok"}), chunk({}, "stop"))
    async with chat_server(lambda seen: reply) as server:
        await collect(OpenAIChatBackend(server.url, api_key_env="KIT_TEST_MODEL_KEY"), ask())
    assert server.seen[0].headers["authorization"] == "Bearer sk-secret-123"


async def test_missing_api_key_env_var_is_a_clear_model_error() -> None:
    backend = OpenAIChatBackend("http://127.0.0.1:9/v1", api_key_env="KIT_TEST_UNSET_KEY")
    with pytest.raises(ModelError, match=r"KIT_TEST_UNSET_KEY .* is not set"):
        await collect(backend, ask())


# --- tool calls, clean and messy -------------------------------------------------------------


def fn(name: str | None = None, arguments: str | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    return function


def tc(index: int | None = None, id: str | None = None, **function: Any) -> dict[str, Any]:
    fragment: dict[str, Any] = {"function": fn(**function)}
    if index is not None:
        fragment["index"] = index
    if id is not None:
        fragment["id"] = id
        fragment["type"] = "function"
    return fragment


MESSY_STREAMS = {
    "openai-shape": [
        [tc(0, "call_a", name="get_weather", arguments="")],
        [tc(0, arguments='{"city":')],
        [tc(0, arguments=' "Paris"}')],
        [tc(1, "call_b", name="get_weather", arguments='{"city": "London"}')],
    ],
    "missing-index": [
        [tc(None, "call_a", name="get_weather", arguments='{"city"')],
        [tc(None, arguments=': "Paris"}')],
        [tc(None, "call_b", name="get_weather")],
        [tc(None, arguments='{"city": "London"}')],
    ],
    "every-call-index-0": [
        [tc(0, "call_a", name="get_weather", arguments='{"city": "Paris"}')],
        [tc(0, "call_b", name="get_weather", arguments='{"city": "London"}')],
    ],
    "id-and-name-repeated": [
        [tc(0, "call_a", name="get_weather", arguments='{"city":')],
        [tc(0, "call_a", name="get_weather", arguments=' "Paris"}')],
        [tc(1, "call_b", name="get_weather", arguments='{"city": ')],
        [tc(1, "call_b", name="get_weather", arguments='"London"}')],
    ],
    "id-arrives-late": [
        [tc(0, name="get_weather", arguments='{"city":')],
        [tc(0, "call_a", arguments=' "Paris"}')],
        [tc(1, name="get_weather", arguments='{"city": "London"}')],
        [tc(1, "call_b")],
    ],
    "no-ids-no-index-name-repeated": [
        [tc(name="get_weather", arguments='{"city": "Paris"}')],
        [tc(name="get_weather", arguments="")],
        [tc(arguments='{"city": "London"}')],
    ],
    "two-calls-in-one-chunk": [
        [
            tc(0, "call_a", name="get_weather", arguments='{"city": "Paris"}'),
            tc(1, "call_b", name="get_weather", arguments='{"city": "London"}'),
        ],
    ],
    "same-id-twice-and-empty-ids": [
        [tc(0, "", name="get_weather", arguments='{"city": "Paris"}')],
        [tc(1, "", name="get_weather", arguments='{"city": "London"}')],
    ],
}


@pytest.mark.parametrize("fragments", list(MESSY_STREAMS.values()), ids=list(MESSY_STREAMS))
async def test_messy_tool_call_deltas_come_out_clean(fragments: list[list[dict[str, Any]]]) -> None:
    chunks = [chunk({"role": "assistant", "content": None})]
    chunks += [chunk({"tool_calls": f}) for f in fragments]
    chunks.append(chunk({}, "tool_calls"))
    async with chat_server(lambda seen: stream_of(*chunks)) as server:
        events = await collect(OpenAIChatBackend(server.url), ask(tools=(WEATHER,)))
    calls = tool_calls(events)
    assert [c.name for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Paris"}, {"city": "London"}]
    assert len({c.id for c in calls}) == 2
    assert finish_of(events).reason == "tool_calls"


async def test_upstream_ids_are_kept_when_usable() -> None:
    fragments = MESSY_STREAMS["id-arrives-late"]
    chunks = [chunk({"tool_calls": f}) for f in fragments] + [chunk({}, "tool_calls")]
    async with chat_server(lambda seen: stream_of(*chunks)) as server:
        events = await collect(OpenAIChatBackend(server.url), ask(tools=(WEATHER,)))
    assert tool_calls(events)[0].id == "call_a"


async def test_tool_calls_announced_as_stop_still_finish_as_tool_calls() -> None:
    chunks = [
        chunk({"tool_calls": [tc(0, "c1", name="get_weather", arguments="{}")]}),
        chunk({}, "stop"),
    ]
    async with chat_server(lambda seen: stream_of(*chunks)) as server:
        events = await collect(OpenAIChatBackend(server.url), ask(tools=(WEATHER,)))
    assert finish_of(events).reason == "tool_calls"


async def test_empty_arguments_become_an_empty_object() -> None:
    chunks = [chunk({"tool_calls": [tc(0, "c1", name="get_weather")]}), chunk({}, "tool_calls")]
    async with chat_server(lambda seen: stream_of(*chunks)) as server:
        events = await collect(OpenAIChatBackend(server.url), ask(tools=(WEATHER,)))
    assert tool_calls(events)[0].arguments == "{}"


# --- the non-streaming fallback ----------------------------------------------------------------


WHOLE_CALLS = completion(
    {
        "content": None,
        "tool_calls": [
            {
                "id": "call_x",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            # some servers send arguments as an object
            {
                "id": "call_y",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "London"}},
            },
        ],
    },
    finish="tool_calls",
    usage={"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
)


async def test_stream_tool_calls_false_asks_without_streaming_when_tools_are_offered() -> None:
    async with chat_server(lambda seen: WHOLE_CALLS) as server:
        backend = OpenAIChatBackend(server.url, stream_tool_calls=False)
        events = await collect(backend, ask(tools=(WEATHER,)))
    assert "stream" not in server.seen[0].body
    calls = tool_calls(events)
    assert [(c.id, json.loads(c.arguments)) for c in calls] == [
        ("call_x", {"city": "Paris"}),
        ("call_y", {"city": "London"}),
    ]
    assert finish_of(events) == Finish("tool_calls", Usage(20, 9))


async def test_dropped_streamed_tool_calls_are_fetched_again_without_streaming() -> None:
    def handler(seen: Seen) -> Reply:
        if seen.body.get("stream"):
            return stream_of(chunk({"role": "assistant", "content": ""}), chunk({}, "tool_calls"))
        return WHOLE_CALLS

    async with chat_server(handler) as server:
        events = await collect(OpenAIChatBackend(server.url), ask(tools=(WEATHER,)))
    assert [s.body.get("stream") for s in server.seen] == [True, None]
    assert len(tool_calls(events)) == 2
    assert finish_of(events).reason == "tool_calls"


async def test_whole_reply_content_as_a_list_of_parts() -> None:
    reply = completion(
        {"content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "all"}]}
    )
    async with chat_server(lambda seen: reply) as server:
        events = await collect(OpenAIChatBackend(server.url, stream=False), ask())
    assert text_of(events) == "Hi all"


async def test_stream_false_never_streams() -> None:
    reply = completion({"content": "Hi there"})
    async with chat_server(lambda seen: reply) as server:
        backend = OpenAIChatBackend(server.url, stream=False)
        assert backend.capabilities.streaming is False
        events = await collect(backend, ask())
    assert text_of(events) == "Hi there"
    assert finish_of(events).reason == "stop"
    assert "stream" not in server.seen[0].body


# --- errors ------------------------------------------------------------------------------------


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "x", "code": None}}


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(429, "rate_limit_exceeded", id="429"),
        pytest.param(500, "server_error", id="500"),
        pytest.param(503, "server_error", id="503"),
        pytest.param(400, "server_error", id="400"),
        pytest.param(401, "server_error", id="401"),
    ],
)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_http_errors_become_model_errors(
    status: int, code: str, stream: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_TEST_MODEL_KEY", "sk-secret-123")
    reply = Reply(status=status, body=error_body("upstream says no to sk-secret-123"))
    async with chat_server(lambda seen: reply) as server:
        backend = OpenAIChatBackend(server.url, api_key_env="KIT_TEST_MODEL_KEY", stream=stream)
        with pytest.raises(ModelError) as info:
            await collect(backend, ask())
    assert info.value.code == code
    assert f"answered HTTP {status}: upstream says no to ***" in str(info.value)
    assert "sk-secret-123" not in str(info.value)


async def test_error_body_that_is_not_json_is_quoted() -> None:
    reply = Reply(status=502, raw=b"<html>Bad Gateway</html>", content_type="text/html")
    async with chat_server(lambda seen: reply) as server:
        with pytest.raises(ModelError, match="HTTP 502: <html>Bad Gateway</html>"):
            await collect(OpenAIChatBackend(server.url), ask())


async def test_timeout_is_a_model_error() -> None:
    reply = Reply(stall=5, body={})
    async with chat_server(lambda seen: reply) as server:
        backend = OpenAIChatBackend(server.url, timeout=0.2)
        with pytest.raises(ModelError, match=r"timed out after 0\.2s") as info:
            await collect(backend, ask())
    assert info.value.code == "server_error"


async def test_connection_refused_is_a_model_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAIChatBackend(f"http://127.0.0.1:{port}/v1", timeout=2)
    with pytest.raises(ModelError, match="refused the connection") as info:
        await collect(backend, ask())
    assert info.value.code == "server_error"


async def test_bad_json_in_a_stream_is_a_model_error() -> None:
    reply = Reply(events=[f"data: {json.dumps(chunk({'content': 'a'}))}\n\n", "data: {nope\n\n"])
    async with chat_server(lambda seen: reply) as server:
        with pytest.raises(ModelError, match="not JSON"):
            await collect(OpenAIChatBackend(server.url), ask())


async def test_bad_json_in_a_whole_reply_is_a_model_error() -> None:
    reply = Reply(raw=b"{truncated", content_type="application/json")
    async with chat_server(lambda seen: reply) as server:
        with pytest.raises(ModelError, match="not JSON"):
            await collect(OpenAIChatBackend(server.url, stream=False), ask())


async def test_error_event_mid_stream_is_a_model_error() -> None:
    reply = Reply(events=[chunk({"content": "partial"}), {"error": {"message": "overloaded"}}])
    async with chat_server(lambda seen: reply) as server:
        with pytest.raises(ModelError, match="mid-stream: overloaded"):
            await collect(OpenAIChatBackend(server.url), ask())


async def test_stopping_early_closes_the_response() -> None:
    reply = stream_of(*[chunk({"content": f"w{i} "}) for i in range(50)], chunk({}, "stop"))
    async with chat_server(lambda seen: reply) as server:
        backend = OpenAIChatBackend(server.url)
        async with contextlib.aclosing(backend.stream(ask())) as events:
            async for event in events:
                assert isinstance(event, TextDelta)
                break
        await backend.aclose()


async def test_injected_http_client_is_used_and_not_closed() -> None:
    import httpx

    reply = stream_of(chunk({"content": "ok"}), chunk({}, "stop"))
    async with (
        chat_server(lambda seen: reply) as server,
        httpx.AsyncClient(headers={"x-trace": "1"}) as http,
    ):
        backend = OpenAIChatBackend(server.url, http=http)
        events = await collect(backend, ask())
        assert not http.is_closed
    assert text_of(events) == "ok"
    assert server.seen[0].headers["x-trace"] == "1"


async def test_a_server_refusing_stream_options_is_asked_again_without_them() -> None:
    def handler(seen: Seen) -> Reply:
        if "stream_options" in seen.body:
            return Reply(
                status=400, body=error_body("Unrecognized request argument: stream_options")
            )
        return stream_of(chunk({"content": "ok"}), chunk({}, "stop"))

    async with chat_server(handler) as server:
        backend = OpenAIChatBackend(server.url)
        events = [e async for e in backend.stream(ask())]
        events += [e async for e in backend.stream(ask())]
        await backend.aclose()
    assert text_of(events) == "okok"
    assert ["stream_options" in s.body for s in server.seen] == [True, False, False]


# --- streams cut off --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([chunk({"content": "The first half of a long"})], id="text-then-eof"),
        pytest.param(
            [chunk({"tool_calls": [tc(0, "c1", name="get_weather", arguments='{"city":')]})],
            id="call-then-eof",
        ),
        pytest.param([chunk({"content": "half"}), {"id": "x", "choices": []}], id="no-finish"),
    ],
)
async def test_a_stream_cut_off_before_it_finished_is_a_model_error(events: list[Any]) -> None:
    # The connection closes cleanly (connection: close, no length): only the missing
    # finish_reason and [DONE] tell a cut reply from a whole one.
    async with chat_server(lambda seen: Reply(events=events)) as server:
        with pytest.raises(ModelError, match="cut its stream off") as info:
            await collect(OpenAIChatBackend(server.url), ask(tools=(WEATHER,)))
    assert info.value.code == "server_error"


async def test_a_stream_cut_inside_a_chunked_body_is_a_model_error() -> None:
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    event = f"data: {json.dumps(chunk({'content': 'partial'}))}\n\n".encode()
    # one chunk, then the connection closes without the last (zero-length) chunk
    wire = head.encode() + f"{len(event):x}\r\n".encode() + event + b"\r\n"
    async with chat_server(lambda seen: Reply(wire=wire)) as server:
        with pytest.raises(ModelError, match="failed: RemoteProtocolError"):
            await collect(OpenAIChatBackend(server.url), ask())


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([chunk({"content": "whole"}), chunk({}, "stop")], id="finish-no-done"),
        pytest.param([chunk({"content": "whole"}), "data: [DONE]\n\n"], id="done-no-finish"),
    ],
)
async def test_either_finish_marker_ends_a_stream_as_finished(events: list[Any]) -> None:
    async with chat_server(lambda seen: Reply(events=events)) as server:
        events_out = await collect(OpenAIChatBackend(server.url), ask())
    assert text_of(events_out) == "whole"
    assert finish_of(events_out).reason == "stop"


# --- connections --------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])
async def test_fifty_sequential_calls_use_one_connection(streamed: bool) -> None:
    def handler(seen: Seen) -> Reply:
        if seen.body.get("stream"):
            return stream_of(chunk({"content": "Hello"}), chunk({"content": " there"}, "stop"))
        return completion({"content": "Hello there"})

    async with chat_server(handler, keep_alive=True) as server:
        backend = OpenAIChatBackend(server.url, stream=streamed)
        try:
            for _ in range(50):
                events = [event async for event in backend.stream(ask())]
                assert text_of(events) == "Hello there" and finish_of(events).reason == "stop"
        finally:
            await backend.aclose()
    assert len(server.seen) == 50
    assert server.connections == 1
