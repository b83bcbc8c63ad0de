"""The painting assistant of DashScope's getting-started guide, end to end with built-in tools:
the official ``dashscope`` SDK drives ``kit serve --config kit.yaml`` on loopback, the scripted
model calls quark_search (BM25 over ``examples/corpus``) and text_to_image (``local`` backend),
and the reply lists the image, which the files routes serve as a PNG. Also a code interpreter
figure as the dashscope SDK reads it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from builtin_project import write_builtin_project
from kit_server import KitServer, running_kit_server
from openai import OpenAI
from PIL import Image

PROMPT = "Please help me draw a picture of a ragdoll cat."
TOOLS = [
    {"type": "quark_search", "description": "For researching art topics"},
    {"type": "text_to_image", "description": "For creating visual examples"},
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = write_builtin_project(tmp_path_factory.mktemp("kit-painting"))
    with running_kit_server(
        database=str(folder / "server.db"),
        output_dir=folder,
        extra_args=["--config", str(folder / "kit.yaml")],
    ) as running:
        yield running


@pytest.fixture
def ds(server: KitServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    import dashscope

    monkeypatch.setattr(dashscope, "base_http_api_url", server.dashscope_url)
    monkeypatch.setattr(dashscope, "api_key", server.api_key)
    return dashscope


def art_maestro(ds: Any) -> tuple[Any, Any]:
    assistant = ds.Assistants.create(
        model="qwen-max",
        name="Art Maestro",
        description="AI assistant for painting and art knowledge",
        instructions="Provide information on painting techniques, art history, and creative "
        "guidance. Use tools for research and image generation.",
        tools=TOOLS,
    )
    assert assistant.status_code == 200, assistant
    thread = ds.Threads.create()
    message = ds.Messages.create(thread.id, content=PROMPT)
    assert message.status_code == 200
    return assistant, thread


def fetch(server: KitServer, url: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(trust_env=False, timeout=10) as http:
        return http.get(url, headers=headers)


def check_reply(ds: Any, server: KitServer, thread_id: str) -> None:
    """The reply names the image (text and an image_file part) and the image is a PNG."""
    messages = ds.Messages.list(thread_id)
    assert messages.status_code == 200
    reply, asked = messages.data
    assert asked.content[0].text.value == PROMPT
    text = reply.content[0].text.value
    assert text.startswith("Here is your ragdoll cat: ")
    shown = json.loads(text.removeprefix("Here is your ragdoll cat: "))
    assert shown["prompt"] == "A ragdoll cat"
    image = reply.content[1]
    assert type(image).__name__ == "MessageContentImageFile"
    # the SDK's ImageFile drops `file_id`; the server repeats it on the part
    assert shown["file_ids"] == [image.file_id]

    info = ds.Files.get(image.file_id)
    assert info.status_code == 200
    assert info.output["name"] == "image.png" and info.output["content_type"] == "image/png"
    png = fetch(server, info.output["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_MAGIC) and len(png.content) == info.output["size"]
    assert Image.open(io.BytesIO(png.content)).size == (256, 256)


def test_the_painting_assistant_searches_draws_and_shows_the_image(
    ds: Any, server: KitServer
) -> None:
    assistant, thread = art_maestro(ds)
    run = ds.Runs.create(thread.id, assistant_id=assistant.id)
    assert run.status_code == 200
    run = ds.Runs.wait(run.id, thread_id=thread.id)
    assert run.status == "completed", run

    steps = ds.Steps.list(run.id, thread_id=thread.id, order="asc")
    assert [s.type for s in steps.data] == ["tool_calls", "tool_calls", "message_creation"]
    # dashscope 2.0.2 keeps tool calls of types it has no class for as plain dicts
    search = steps.data[0].step_details.tool_calls[0]
    assert search["type"] == "quark_search"
    assert json.loads(search["quark_search"]["arguments"]) == {"query": "ragdoll cat"}
    found = json.loads(search["quark_search"]["output"])
    assert found["results"][0]["title"] == "Ragdoll cats"
    assert found["results"][0]["source"] == "ragdoll-cats.md"
    assert "blue eyes" in found["results"][0]["snippet"]

    draw = steps.data[1].step_details.tool_calls[0]
    assert draw["type"] == "text_to_image"
    assert json.loads(draw["text_to_image"]["arguments"]) == {"prompt": "A ragdoll cat"}
    assert json.loads(draw["text_to_image"]["output"])["file_ids"]
    assert all(s.status == "completed" for s in steps.data)

    check_reply(ds, server, thread.id)


def test_the_painting_assistant_streams_its_tool_steps(ds: Any, server: KitServer) -> None:
    assistant, thread = art_maestro(ds)
    events = list(ds.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    names = [name for name, _ in events]
    assert names[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert names[-1] == "thread.run.completed"

    done_tools = [
        data.step_details.tool_calls[0]
        for name, data in events
        if name == "thread.run.step.completed" and data.type == "tool_calls"
    ]
    assert [call["type"] for call in done_tools] == ["quark_search", "text_to_image"]
    assert json.loads(done_tools[0]["quark_search"]["output"])["results"]
    # each call is announced by a step delta before the tool runs
    announced = [
        call["type"]
        for name, data in events
        if name == "thread.run.step.delta"
        for call in data.delta.step_details.tool_calls
    ]
    assert announced == ["quark_search", "text_to_image"]
    assert names.index("thread.run.step.delta") < names.index("thread.run.step.completed")
    text = "".join(
        data.delta.content.text.value for name, data in events if name == "thread.message.delta"
    )
    assert text.startswith("Here is your ragdoll cat: ")
    assert ds.Runs.retrieve(events[-1][1].id, thread_id=thread.id).status == "completed"

    check_reply(ds, server, thread.id)


def test_the_dashscope_sdk_reads_a_code_interpreter_step_with_a_figure(
    ds: Any, server: KitServer
) -> None:
    assistant = ds.Assistants.create(
        model="qwen-max", name="Plotter", tools=[{"type": "code_interpreter"}]
    )
    thread = ds.Threads.create()
    ds.Messages.create(thread.id, content="plot squares please")
    run = ds.Runs.wait(ds.Runs.create(thread.id, assistant_id=assistant.id).id, thread_id=thread.id)
    assert run.status == "completed", run

    steps = ds.Steps.list(run.id, thread_id=thread.id, order="asc")
    call = steps.data[0].step_details.tool_calls[0]
    assert type(call).__name__ == "CodeToolCall"
    assert call.code_interpreter.outputs == []  # a non-empty list crashes dashscope 2.0.2
    assert "plt.plot" in call.code_interpreter.input
    assert call.code_interpreter.output.startswith("plotted 4 points")
    (file_id,) = call.code_interpreter.file_ids

    reply = ds.Messages.list(thread.id).data[0]
    assert reply.content[0].text.value.startswith("The code said: plotted 4 points")
    assert reply.content[1].file_id == file_id
    info = ds.Files.get(file_id)
    assert info.output["name"] == "figure-1.png"
    assert fetch(server, info.output["url"]).content.startswith(PNG_MAGIC)


def test_the_thread_continues_through_the_responses_api(ds: Any, server: KitServer) -> None:
    """The migration example (README, issue 17): the painting assistant created and run through
    DashScope's Assistant API, then the same conversation continued through the Responses API
    (openai SDK) with ``conversation=`` and the same assistant through ``prompt``."""

    assistant, thread = art_maestro(ds)
    run = ds.Runs.wait(ds.Runs.create(thread.id, assistant_id=assistant.id).id, thread_id=thread.id)
    assert run.status == "completed", run
    before = ds.Messages.list(thread.id).data[0].content[0].text.value
    assert before.startswith("Here is your ragdoll cat: ")

    with OpenAI(
        base_url=server.openai_url,
        api_key=server.api_key,
        max_retries=0,
        _strict_response_validation=True,
    ) as client:
        response = client.responses.create(
            conversation=thread.id, prompt={"id": assistant.id}, input=PROMPT
        )
        assert response.status == "completed" and response.model == "qwen-max"
        assert response.instructions is not None
        assert response.instructions.startswith("Provide information on painting")
        after = response.output_text
        assert after.startswith("Here is your ragdoll cat: ")
        # the same tools answered: the same prompt to the image backend, a new image
        shown_before = json.loads(before.removeprefix("Here is your ragdoll cat: "))
        shown_after = json.loads(after.removeprefix("Here is your ragdoll cat: "))
        assert shown_after["prompt"] == shown_before["prompt"] == "A ragdoll cat"
        assert shown_after["file_ids"] != shown_before["file_ids"]
        items = client.conversations.items.list(thread.id, order="asc").data
        assert [i.type for i in items] == ["message"] * 4

    messages = ds.Messages.list(thread.id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[-1].content[0].text.value == after
