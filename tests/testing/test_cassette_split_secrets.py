"""A secret the model streams in pieces is scrubbed from cassettes as the text it makes
(issue 13, item 6): recorded over loopback HTTP, split at every position, in both dialects'
delta shapes and in tool-call argument fragments, then replayed with the server stopped."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from assistant_kit.testing.cassettes import CassetteStore, spec_digest
from assistant_kit.testing.secrets import REDACTED, Scrubber

pytestmark = pytest.mark.anyio

SECRET = "rer pt-SENTINEL"
REPLY = f"The key is {SECRET}, keep it."
DIGEST = spec_digest({"name": "a"})


def openai_delta(piece: str) -> dict:
    return {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 0, "type": "text", "text": {"value": piece}}]},
    }


def dashscope_delta(piece: str) -> dict:
    return {
        "id": "message_1",
        "object": "thread.message.delta",
        "delta": {"role": "assistant", "content": [{"type": "text", "text": {"value": piece}}]},
    }


def arguments_delta(piece: str) -> dict:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"arguments": piece}}
    return {
        "id": "step_1",
        "object": "thread.run.step.delta",
        "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}},
    }


SHAPES = {"openai": openai_delta, "dashscope": dashscope_delta, "arguments": arguments_delta}


async def run(request: Request) -> StreamingResponse:
    """Streams REPLY cut at the positions in ?cuts=3,8 as deltas of ?shape=..."""
    cuts = [int(c) for c in request.query_params["cuts"].split(",")]
    shape = SHAPES[request.query_params["shape"]]
    bounds = [0, *cuts, len(REPLY)]
    pieces = [REPLY[a:b] for a, b in itertools.pairwise(bounds)]
    space = " " if request.query_params["shape"] == "openai" else ""

    async def events():
        yield f"event:thread.run.created\ndata:{space}{json.dumps({'id': 'run_1'})}\n\n"
        for piece in pieces:
            data = json.dumps(shape(piece))
            yield f"event:thread.message.delta\ndata:{space}{data}\n\n"
        yield "event:done\ndata:[DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def server_url():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[Route("/runs", run, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def streamed_text(events: list[str]) -> str:
    text = ""
    for event in events:
        for line in event.split("\n"):
            if line.startswith("data:") and "delta" in line:
                delta = json.loads(line[5:])["delta"]
                if "content" in delta:
                    text += delta["content"][0]["text"]["value"]
                else:
                    text += delta["step_details"]["tool_calls"][0]["function"]["arguments"]
    return text


async def record(store: CassetteStore, url: str, test_id: str, query: str) -> list[str]:
    cassette = store.new(test_id, DIGEST)
    recorder = cassette.recorder(httpx.AsyncHTTPTransport(), owns_inner=True)
    async with httpx.AsyncClient(base_url=url, transport=recorder) as http:
        recorder.at_turn(0)
        async with http.stream("POST", f"/runs?{query}") as response:
            live = [line async for line in response.aiter_lines()]
    assert SECRET in streamed_text(["\n".join(live)])  # the model really streamed it
    path = store.save(cassette)
    (exchange,) = json.loads(path.read_text(encoding="utf-8"))["exchanges"]
    return exchange["response"]["events"]


def cut_lists() -> list[list[int]]:
    start = REPLY.index(SECRET)
    one_cut = [[start + i] for i in range(1, len(SECRET))]
    return [*one_cut, [start + 5, start + 10], [start + 1, start + 2, start + 14]]


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_a_secret_split_at_every_position_never_reaches_a_cassette(
    tmp_path, server_url, shape
):
    store = CassetteStore(tmp_path, Scrubber([SECRET]))
    for number, cuts in enumerate(cut_lists()):
        test_id = f"a::split {number}"
        query = f"shape={shape}&cuts={','.join(map(str, cuts))}"
        events = await record(store, server_url, test_id, query)
        assert streamed_text(events) == REPLY.replace(SECRET, REDACTED), cuts
        for piece in (SECRET[:8], SECRET[-8:]):  # no large piece of it is left either
            assert piece not in json.dumps(events), (cuts, events)

        # the replay streams exactly the scrubbed text, with the server untouched
        replay = store.load(test_id, DIGEST).replayer()
        replay.at_turn(0)
        async with httpx.AsyncClient(base_url=server_url, transport=replay) as http:
            replayed = (await http.post(f"/runs?{query}")).text
        assert streamed_text(replayed.split("\n\n")) == REPLY.replace(SECRET, REDACTED)


def test_pieces_keep_their_number_and_give_the_scrubbed_text_whole():
    scrubber = Scrubber([SECRET])
    assert scrubber.pieces(["rer p", "t-SEN", "TINEL"]) == [REDACTED, "", ""]
    assert scrubber.pieces(["a", "b"]) == ["a", "b"]
    for cut in range(len(REPLY) + 1):
        pieces = scrubber.pieces([REPLY[:cut], REPLY[cut:]])
        assert len(pieces) == 2
        assert "".join(pieces) == scrubber.text(REPLY)
