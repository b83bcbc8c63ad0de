"""Cassettes: record through a real transport (loopback HTTP with SSE, or ASGI), replay with the
server stopped, scrub secrets, and report misses that name the test to record again."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from assistant_kit.testing.cassettes import CassetteMiss, CassetteStore, spec_digest
from assistant_kit.testing.secrets import Scrubber

pytestmark = pytest.mark.anyio

SENTINEL = "sk-SENTINEL-cassette-5e1d"
TEST_ID = "billing-bot::looks up an order"
DIGEST = spec_digest({"name": "billing-bot"}, {"name": "looks up an order"})


# A DashScope-shaped fake target: it checks the key and leaks it back, as a careless server might.


def _authorized(request: Request) -> bool:
    return request.headers.get("authorization") == f"Bearer {SENTINEL}"


async def create_thread(request: Request) -> JSONResponse:
    if not _authorized(request):
        return JSONResponse({"code": "InvalidApiKey"}, status_code=401)
    return JSONResponse(
        {"id": "thread_abc", "object": "thread", "metadata": {}, "debug": f"key={SENTINEL}"},
        headers={"x-echo-authorization": request.headers["authorization"]},
    )


async def add_message(request: Request) -> JSONResponse:
    body = await request.json()
    tid = request.path_params["tid"]
    return JSONResponse({"id": "message_1", "thread_id": tid, "content": body["content"]})


async def create_run(request: Request) -> StreamingResponse:
    body = await request.json()
    assert body["stream"] is True

    async def events():
        for name, data in [
            ("thread.run.created", {"id": "run_1", "status": "queued"}),
            ("thread.message.delta", {"delta": {"content": [{"text": {"value": "Shipped"}}]}}),
            ("thread.run.completed", {"id": "run_1", "status": "completed"}),
        ]:
            yield f"event:{name}\ndata:{json.dumps(data)}\n\n"
            await asyncio.sleep(0.01)
        yield "event:done\ndata:[DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def list_messages(request: Request) -> JSONResponse:
    order = request.query_params.get("order", "desc")
    return JSONResponse({"data": [{"id": "message_2", "role": "assistant"}], "order": order})


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/api/v1/threads", create_thread, methods=["POST"]),
            Route("/api/v1/threads/{tid}/messages", add_message, methods=["POST"]),
            Route("/api/v1/threads/{tid}/messages", list_messages, methods=["GET"]),
            Route("/api/v1/threads/{tid}/runs", create_run, methods=["POST"]),
        ]
    )


class LoopbackServer:
    """uvicorn on 127.0.0.1 with a random free port, in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(make_app(), log_level="error", lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}/api/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def live_server():
    server = LoopbackServer()
    url = server.start()
    yield server, url
    if server.thread.is_alive():
        server.stop()
    else:
        server.sock.close()


async def conversation(http: httpx.AsyncClient, transport, user: str = "Where is order 42?"):
    """What the runner does for one one-turn test, reduced to the HTTP calls."""
    seen = []
    transport.at_turn("setup")
    thread = await http.post("/threads", content=b"")
    seen.append((thread.status_code, thread.json()))
    tid = thread.json()["id"]
    transport.at_turn(0)
    msg = await http.post(f"/threads/{tid}/messages", json={"role": "user", "content": user})
    seen.append((msg.status_code, msg.json()))
    async with http.stream(
        "POST", f"/threads/{tid}/runs", json={"assistant_id": "asst_1", "stream": True}
    ) as run:
        assert run.headers["content-type"].startswith("text/event-stream")
        seen.append((run.status_code, [line async for line in run.aiter_lines()]))
    listed = await http.get(f"/threads/{tid}/messages", params={"order": "asc"})
    seen.append((listed.status_code, listed.json()))
    return seen


async def test_record_over_loopback_then_replay_with_the_server_stopped(tmp_path, live_server):
    server, url = live_server
    store = CassetteStore(tmp_path / "cassettes", Scrubber([SENTINEL]))
    cassette = store.new(TEST_ID, DIGEST)
    real = httpx.AsyncHTTPTransport()
    recorder = cassette.recorder(real, repetition=0, owns_inner=True)
    headers = {"Authorization": f"Bearer {SENTINEL}"}
    async with httpx.AsyncClient(base_url=url, transport=recorder, headers=headers) as http:
        live = await conversation(http, recorder)
    path = store.save(cassette)
    server.stop()

    assert live[0][0] == 200  # the key reached the server
    assert live[2][1][:2] == [
        "event:thread.run.created",
        'data:{"id": "run_1", "status": "queued"}',
    ]

    stored = path.read_text(encoding="utf-8")
    assert SENTINEL not in stored
    data = json.loads(stored)
    assert data["test_id"] == TEST_ID
    assert data["spec_digest"] == DIGEST
    first, _, run, listed = data["exchanges"]
    assert first["turn"] == "setup"
    assert first["request"]["headers"]["authorization"] == "[REDACTED]"
    assert first["response"]["headers"]["x-echo-authorization"] == "Bearer [REDACTED]"
    assert first["response"]["body"] == (
        '{"id":"thread_abc","object":"thread","metadata":{},"debug":"key=[REDACTED]"}'
    )
    assert run["turn"] == 0
    assert run["request"]["body"] == {"$json": {"assistant_id": "asst_1", "stream": True}}
    assert run["response"]["events"][0].startswith("event:thread.run.created\ndata:")
    assert run["response"]["events"][-1] == "event:done\ndata:[DONE]"
    assert listed["request"]["path"] == "/api/v1/threads/thread_abc/messages?order=asc"

    # Replay: the server is gone, nothing listens on the port.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as probe:
            await probe.post("/threads")
    replayer = store.load(TEST_ID, DIGEST).replayer(repetition=0)
    async with httpx.AsyncClient(base_url=url, transport=replayer) as http:
        replayed = await conversation(http, replayer)
    live[0][1]["debug"] = "key=[REDACTED]"
    assert replayed == live


async def test_record_through_the_asgi_transport(tmp_path):
    store = CassetteStore(tmp_path, Scrubber([SENTINEL]))
    cassette = store.new(TEST_ID, DIGEST)
    recorder = cassette.recorder(httpx.ASGITransport(app=make_app()), owns_inner=True)
    headers = {"Authorization": f"Bearer {SENTINEL}"}
    async with httpx.AsyncClient(
        base_url="http://kit/api/v1", transport=recorder, headers=headers
    ) as http:
        live = await conversation(http, recorder)
    store.save(cassette)
    replayer = store.load(TEST_ID, DIGEST).replayer()
    async with httpx.AsyncClient(base_url="http://kit/api/v1", transport=replayer) as http:
        assert (await conversation(http, replayer))[1:] == live[1:]


# Misses ------------------------------------------------------------------------------------------


def fake_target(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/threads"):
        return httpx.Response(200, json={"id": "thread_abc"})
    if request.url.path.endswith("/runs"):
        return httpx.Response(
            200,
            content=b"event:thread.run.completed\ndata:{}\n\nevent:done\ndata:[DONE]\n\n",
            headers={"content-type": "text/event-stream"},
        )
    return httpx.Response(200, json={"ok": True, "echo": json.loads(request.content or b"null")})


async def recorded_store(tmp_path, repetitions=1) -> CassetteStore:
    store = CassetteStore(tmp_path, Scrubber([SENTINEL]))
    cassette = store.new(TEST_ID, DIGEST)
    for rep in range(repetitions):
        recorder = cassette.recorder(httpx.MockTransport(fake_target), repetition=rep)
        async with httpx.AsyncClient(base_url="http://t/api/v1", transport=recorder) as http:
            await conversation(http, recorder, user=f"question {rep}")
    store.save(cassette)
    return store


async def test_missing_cassette_names_the_test(tmp_path):
    with pytest.raises(CassetteMiss) as info:
        CassetteStore(tmp_path).load(TEST_ID, DIGEST)
    message = str(info.value)
    assert f"no cassette for {TEST_ID!r}" in message
    assert f"kit test --record {tmp_path} '{TEST_ID}'" in message


async def test_changed_spec_is_a_miss(tmp_path):
    store = await recorded_store(tmp_path)
    with pytest.raises(CassetteMiss, match="another version of its spec"):
        store.load(TEST_ID, spec_digest({"name": "billing-bot", "model": "new"}))


async def test_changed_request_body_is_a_miss(tmp_path):
    store = await recorded_store(tmp_path)
    replayer = store.load(TEST_ID, DIGEST).replayer()
    async with httpx.AsyncClient(base_url="http://t/api/v1", transport=replayer) as http:
        with pytest.raises(CassetteMiss) as info:
            await conversation(http, replayer, user="Where is order 43?")
    message = str(info.value)
    assert "repetition 1, turn 1" in message
    assert "the body of POST /api/v1/threads/thread_abc/messages differs" in message
    assert TEST_ID in message


async def test_extra_or_reordered_requests_are_misses(tmp_path):
    store = await recorded_store(tmp_path)
    replayer = store.load(TEST_ID, DIGEST).replayer()
    async with httpx.AsyncClient(base_url="http://t/api/v1", transport=replayer) as http:
        replayer.at_turn("setup")
        with pytest.raises(CassetteMiss, match="does not match the next recorded request"):
            await http.get("/threads/thread_abc")
    replayer = store.load(TEST_ID, DIGEST).replayer()
    async with httpx.AsyncClient(base_url="http://t/api/v1", transport=replayer) as http:
        await conversation(http, replayer, user="question 0")
        with pytest.raises(CassetteMiss, match="was never recorded"):
            await http.post("/threads")


async def test_turn_tags_must_agree(tmp_path):
    store = await recorded_store(tmp_path)
    replayer = store.load(TEST_ID, DIGEST).replayer()
    async with httpx.AsyncClient(base_url="http://t/api/v1", transport=replayer) as http:
        replayer.at_turn(0)  # the recording made this request during set-up
        with pytest.raises(CassetteMiss, match=r"\(setup\)"):
            await http.post("/threads", content=b"")


async def test_repetitions_replay_their_own_exchanges(tmp_path):
    store = await recorded_store(tmp_path, repetitions=2)
    cassette = store.load(TEST_ID, DIGEST)
    for rep in (1, 0):
        replayer = cassette.replayer(repetition=rep)
        async with httpx.AsyncClient(base_url="http://t/api/v1", transport=replayer) as http:
            seen = await conversation(http, replayer, user=f"question {rep}")
        assert seen[1][1]["echo"]["content"] == f"question {rep}"


def test_cassette_paths_are_readable_and_distinct(tmp_path):
    store = CassetteStore(tmp_path)
    a = store.path_for("bot::looks up an order")
    b = store.path_for("bot::looks up an order?")
    assert a != b
    assert a.name.startswith("bot--looks-up-an-order.")
    assert a.parent == tmp_path


def test_spec_digest_is_stable_and_order_insensitive():
    assert spec_digest({"a": 1, "b": [1, 2]}) == spec_digest({"b": [1, 2], "a": 1})
    assert spec_digest({"a": 1}) != spec_digest({"a": 2})


def binary_target(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, content=b"\x89PNG\r\n\x1a\n\x00\xff", headers={"content-type": "image/png"}
    )


async def test_binary_responses_and_text_bodies_round_trip(tmp_path):
    store = CassetteStore(tmp_path)
    cassette = store.new(TEST_ID, DIGEST)
    recorder = cassette.recorder(httpx.MockTransport(binary_target))
    async with httpx.AsyncClient(base_url="http://t", transport=recorder) as http:
        live = await http.post("/files/file_1/content", content=b"plain text body")
        upload = await http.post("/files", content=b"\xff\xfe binary")
    store.save(cassette)
    replayer = store.load(TEST_ID, DIGEST).replayer()
    async with httpx.AsyncClient(base_url="http://t", transport=replayer) as http:
        again = await http.post("/files/file_1/content", content=b"plain text body")
        again_upload = await http.post("/files", content=b"\xff\xfe binary")
    assert again.content == live.content == b"\x89PNG\r\n\x1a\n\x00\xff"
    assert again_upload.content == upload.content
    first, second = cassette.exchanges
    assert first.request_body == "plain text body"
    assert second.request_body == {"$base64": "//4gYmluYXJ5"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param("{not json", "is not valid JSON", id="corrupt"),
        pytest.param(
            '{"format": "other", "version": 1}', "is not a version 1 kit cassette", id="alien"
        ),
    ],
)
def test_unreadable_cassettes_are_misses(tmp_path, content, fragment):
    store = CassetteStore(tmp_path)
    store.path_for(TEST_ID).write_text(content, encoding="utf-8")
    with pytest.raises(CassetteMiss, match=fragment) as info:
        store.load(TEST_ID, DIGEST)
    assert f"kit test --record {tmp_path} '{TEST_ID}'" in str(info.value)


async def test_a_shared_client_routes_each_task_to_its_own_cassette(tmp_path):
    import anyio

    from assistant_kit.testing.cassettes import CassetteRouter

    store = await recorded_store(tmp_path, repetitions=2)
    cassette = store.load(TEST_ID, DIGEST)
    router = CassetteRouter()
    results = {}
    async with httpx.AsyncClient(base_url="http://t/api/v1", transport=router) as http:

        async def one(rep: int) -> None:
            with router.use(cassette.replayer(repetition=rep)) as transport:
                results[rep] = await conversation(http, transport, user=f"question {rep}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 0)
            tg.start_soon(one, 1)
        with pytest.raises(CassetteMiss, match="outside any test's cassette"):
            await http.get("/assistants")
    assert results[0][1][1]["echo"]["content"] == "question 0"
    assert results[1][1][1]["echo"]["content"] == "question 1"
