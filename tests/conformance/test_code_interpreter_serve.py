"""The code interpreter through ``kit serve`` and the official ``openai`` SDK: a matplotlib figure
comes back as an image output whose file the files routes serve, and the escape suite: each
attempt is contained with a clear tool output, the run still completes (a tool failure is an
output the model reads) and the server keeps serving right after.

Limits are small (``builtin_project.LIMITS``) so the suite stays fast. Escapes that only the
namespaces contain (the network, a fork bomb, other processes' environments) are skipped where
``unshare`` cannot create them, as the sandbox's own tests are.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from builtin_project import SECRET_NAME, SECRET_VALUE, write_builtin_project
from kit_server import KitServer, running_kit_server
from openai import OpenAI

from assistant_kit.server.tools.sandbox_launch import probe_isolation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
needs_namespaces = pytest.mark.skipif(
    not probe_isolation().namespaces,
    reason="unshare cannot create namespaces here: the sandbox does not cut the network, "
    "limit processes or hide other processes on this machine",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = write_builtin_project(tmp_path_factory.mktemp("kit-code"))
    with running_kit_server(
        database=str(folder / "server.db"),
        output_dir=folder,
        extra_args=["--config", str(folder / "kit.yaml")],
        env={SECRET_NAME: SECRET_VALUE},
    ) as running:
        yield running


@pytest.fixture
def client(server: KitServer) -> Iterator[OpenAI]:
    sdk = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
    yield sdk
    sdk.close()


@pytest.fixture(scope="module")
def assistant_id(server: KitServer) -> str:
    with OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0) as sdk:
        bot = sdk.beta.assistants.create(
            model="qwen-max", name="Coder", tools=[{"type": "code_interpreter"}]
        )
        return bot.id


def ask(client: OpenAI, assistant_id: str, text: str, thread_id: str | None = None) -> Any:
    """Run ``text`` on a (new) thread; returns the run, its code step's call and the reply."""
    if thread_id is None:
        thread_id = client.beta.threads.create().id
    client.beta.threads.messages.create(thread_id, role="user", content=text)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    calls = [c for s in steps if s.type == "tool_calls" for c in s.step_details.tool_calls]
    reply = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    return run, calls, reply


def logs_of(call: Any) -> str:
    assert call.type == "code_interpreter"
    return "".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs")


def test_a_figure_comes_back_as_an_image_file(
    client: OpenAI, assistant_id: str, server: KitServer
) -> None:
    run, calls, reply = ask(client, assistant_id, "plot squares please")
    assert run.status == "completed"
    (call,) = calls
    assert "plt.plot" in call.code_interpreter.input
    kinds = [o.type for o in call.code_interpreter.outputs]
    assert kinds == ["logs", "image"]
    assert logs_of(call) == "plotted 4 points"
    file_id = call.code_interpreter.outputs[1].image.file_id

    meta = client.files.retrieve(file_id)
    assert (meta.id, meta.object, meta.filename) == (file_id, "file", "figure-1.png")
    content = client.files.content(file_id).read()
    assert content.startswith(PNG_MAGIC) and len(content) == meta.bytes

    assert reply.content[0].text.value.startswith("The code said: plotted 4 points")
    assert reply.content[1].type == "image_file"
    assert reply.content[1].image_file.file_id == file_id


ESCAPES = [
    pytest.param("secret", False, "env: None", id="environment-secret"),
    pytest.param("secret-proc", False, "leaked: []", id="secret-via-proc", marks=needs_namespaces),
    pytest.param("socket", False, "Network is unreachable", id="socket", marks=needs_namespaces),
    pytest.param(
        "fork-bomb",
        True,
        "BlockingIOError: [Errno 11] Resource temporarily unavailable",
        id="fork-bomb",
        marks=needs_namespaces,
    ),
    pytest.param("memory-bomb", True, "MemoryError", id="memory-bomb"),
    pytest.param("write-10gb", True, "OSError: [Errno 27] File too large", id="write-10gb"),
    pytest.param(
        "infinite-loop", True, "CpuTimeExceeded: CPU time limit exceeded", id="infinite-loop"
    ),
]


@pytest.mark.parametrize(("escape", "fails", "said"), ESCAPES)
def test_an_escape_is_contained_and_the_server_keeps_serving(
    client: OpenAI, assistant_id: str, server: KitServer, escape: str, fails: bool, said: str
) -> None:
    text = f"escape: {escape}" + (f" {server.port}" if escape == "socket" else "")
    started = time.monotonic()
    run, calls, reply = ask(client, assistant_id, text)
    assert run.status == "completed", run.last_error  # a tool failure never fails the run
    (call,) = calls
    logs = logs_of(call)
    assert said in logs
    assert SECRET_VALUE not in logs
    assert "CONNECTED" not in logs
    if escape == "socket":  # not even the server itself, on loopback
        assert f"127.0.0.1 {server.port} refused: [Errno 101] Network is unreachable" in logs
    assert ("Traceback" in logs) is fails
    assert reply.content[0].text.value.startswith("The code said: ")
    assert said in reply.content[0].text.value  # the model read what happened
    assert time.monotonic() - started < 20

    # the same thread still runs code, and the server answers other requests
    again, again_calls, again_reply = ask(client, assistant_id, "check", thread_id=run.thread_id)
    assert again.status == "completed"
    assert logs_of(again_calls[0]) == "42"
    assert again_reply.content[0].text.value == "The code said: 42"
    assert client.beta.assistants.retrieve(assistant_id).id == assistant_id
    assert server.process.poll() is None
