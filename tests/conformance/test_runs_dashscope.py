"""The official ``dashscope`` SDK (2.0.2) runs assistants on ``kit serve``: the getting-started
scripts unmodified, ``Runs.wait``, function calls, streams."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit_server import KitServer, running_kit_server, server_env
from runs_project import WEATHER_TOOL, write_project

SEEDS = Path(__file__).parent / "seeds"
REPLY = "Here is a ragdoll cat: a fluffy cat with blue eyes, a cream coat and soft colorpoint ears."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = write_project(tmp_path_factory.mktemp("kit-runs-ds"))
    with running_kit_server(database=str(folder / "server.db"), output_dir=folder) as running:
        yield running


@pytest.fixture
def ds(server: KitServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    import dashscope

    monkeypatch.setattr(dashscope, "base_http_api_url", server.dashscope_url)
    monkeypatch.setattr(dashscope, "api_key", server.api_key)
    return dashscope


def run_seed(server: KitServer, name: str) -> str:
    env = server_env(
        {"DASHSCOPE_HTTP_BASE_URL": server.dashscope_url, "DASHSCOPE_API_KEY": server.api_key}
    )
    done = subprocess.run(
        [sys.executable, str(SEEDS / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_getting_started_script_runs_unmodified(server: KitServer) -> None:
    out = run_seed(server, "assistant_quickstart.py")
    assert "Run completed, status: completed" in out
    listing = json.loads(out.split("Assistant response:\n", 1)[1])
    texts = [m["content"][0]["text"]["value"] for m in listing["data"]]
    assert texts == [REPLY, "Please help me draw a picture of a ragdoll cat."]


def test_the_streaming_getting_started_script_runs_unmodified(server: KitServer) -> None:
    out = run_seed(server, "assistant_quickstart_stream.py")
    assert "Run created: run_" in out
    assert REPLY in out
    assert "Run completed, status: completed" in out
    listing = json.loads(out.split("Assistant response:\n", 1)[1])
    assert listing["data"][0]["content"][0]["text"]["value"] == REPLY


def _weather_assistant(ds: Any) -> tuple[Any, Any]:
    assistant = ds.Assistants.create(model="qwen-max", name="Weather", tools=[WEATHER_TOOL])
    thread = ds.Threads.create()
    ds.Messages.create(thread.id, content="What is the weather in Paris and Rome?")
    return assistant, thread


def test_function_call_round_trip_with_runs_wait(ds: Any) -> None:
    assistant, thread = _weather_assistant(ds)
    run = ds.Runs.create(thread.id, assistant_id=assistant.id)
    assert run.status_code == 200 and run.id.startswith("run_")
    run = ds.Runs.wait(run.id, thread_id=thread.id)
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    assert run.usage["total_tokens"] == run.usage["input_tokens"] + run.usage["output_tokens"]

    busy = ds.Messages.create(thread.id, content="hello?")
    assert busy.status_code == 400 and "while a run" in busy.message

    # The docs' samples leave the ids empty: outputs match the calls by position.
    submitted = ds.Runs.submit_tool_outputs(
        run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": "", "output": "21C"}, {"output": "18C"}],
    )
    assert submitted.status_code == 200 and submitted.id == run.id
    run = ds.Runs.wait(run.id, thread_id=thread.id)
    assert run.status == "completed"
    reply = ds.Messages.list(thread.id).data[0]
    assert reply.content[0].text.value == "The weather is 21C, 18C."
    steps = ds.Steps.list(run.id, thread_id=thread.id)
    assert [s.type for s in steps.data] == ["message_creation", "tool_calls"]
    outputs = [c.function.output for c in steps.data[1].step_details.tool_calls]
    assert outputs == ["21C", "18C"]
    one = ds.Steps.retrieve(steps.data[1].id, thread_id=thread.id, run_id=run.id)
    assert one.status_code == 200 and one.type == "tool_calls" and one.usage.total_tokens > 0
    listed = ds.Runs.list(thread.id)
    assert [r.id for r in listed.data] == [run.id]
    updated = ds.Runs.update(run.id, thread_id=thread.id, metadata={"k": "v"})
    assert updated.metadata == {"k": "v"}


def test_function_call_round_trip_streaming(ds: Any) -> None:
    assistant, thread = _weather_assistant(ds)
    events = list(ds.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    names = [name for name, _ in events]
    assert names[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert names[-1] == "thread.run.requires_action"  # the SDK drops `done`
    run = events[-1][1]
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert ds.Runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"

    stream = ds.Runs.submit_tool_outputs(
        run.id,
        thread_id=thread.id,
        tool_outputs=[
            {"tool_call_id": c.id, "output": t} for c, t in zip(calls, ["1C", "2C"], strict=True)
        ],
        stream=True,
    )
    text = ""
    last = None
    for name, data in stream:
        if name == "thread.message.delta":
            text += data.delta.content.text.value
        last = (name, data)
    assert text == "The weather is 1C, 2C."
    assert last is not None and last[0] == "thread.run.completed"
    assert last[1].usage["output_tokens"] > 0
    assert ds.Runs.wait(run.id, thread_id=thread.id).status == "completed"


def test_create_thread_and_run_streams_the_thread_first(ds: Any) -> None:
    assistant = ds.Assistants.create(model="qwen-max", name="Painter")
    events = list(
        ds.Runs.create_thread_and_run(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "Please draw a picture of a fox."}]},
            stream=True,
        )
    )
    assert events[0][0] == "thread.created"
    thread_id = events[0][1].id
    assert events[-1][0] == "thread.run.completed"
    reply = ds.Messages.list(thread_id).data[0].content[0].text.value
    assert reply.startswith("Here is a fox")


def test_cancel_a_run_waiting_for_outputs(ds: Any) -> None:
    assistant, thread = _weather_assistant(ds)
    run = ds.Runs.wait(ds.Runs.create(thread.id, assistant_id=assistant.id).id, thread_id=thread.id)
    assert run.status == "requires_action"
    cancelled = ds.Runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status_code == 200
    assert ds.Runs.wait(run.id, thread_id=thread.id).status == "cancelled"


def test_a_run_cut_by_max_tokens_ends_where_runs_wait_stops(ds: Any, server: KitServer) -> None:
    # dashscope 2.0.2's Runs.wait knows no `incomplete`: it would poll until its own timeout
    assistant = ds.Assistants.create(model="qwen-max", name="Brief")
    thread = ds.Threads.create()
    ds.Messages.create(thread.id, content="count")
    run = ds.Runs.create(thread.id, assistant_id=assistant.id, max_tokens=3)
    run = ds.Runs.wait(run.id, thread_id=thread.id, timeout_seconds=15)
    assert run.status == "completed"
    assert run.incomplete_details == {"reason": "max_tokens"}
    [reply, _] = ds.Messages.list(thread.id).data
    assert reply.status == "incomplete"
    assert reply.content[0].text.value == "one two three"
    # the same run through the OpenAI dialect says what happened
    import httpx

    same = httpx.get(
        f"{server.openai_url}/threads/{thread.id}/runs/{run.id}",
        headers={"Authorization": f"Bearer {server.api_key}"},
        trust_env=False,
    ).json()
    assert same["status"] == "incomplete"


def test_a_streamed_run_cut_by_max_tokens_ends_with_run_completed(ds: Any) -> None:
    assistant = ds.Assistants.create(model="qwen-max", name="Brief")
    thread = ds.Threads.create()
    ds.Messages.create(thread.id, content="count")
    events = list(ds.Runs.create(thread.id, assistant_id=assistant.id, max_tokens=3, stream=True))
    names = [name for name, _ in events]
    assert "thread.run.incomplete" not in names
    last_run = [obj for name, obj in events if name == "thread.run.completed"][-1]
    assert last_run.status == "completed"
    assert last_run.incomplete_details == {"reason": "max_tokens"}
