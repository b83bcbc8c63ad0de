"""The official ``openai`` SDK's run helpers on ``kit serve``: poll, stream, tool outputs,
parallel calls, cancel, expiry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from kit_server import KitServer, running_kit_server
from openai import AssistantEventHandler, OpenAI
from runs_project import WEATHER_TOOL, write_project


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = write_project(tmp_path_factory.mktemp("kit-runs-oa"))
    with running_kit_server(database=str(folder / "server.db"), output_dir=folder) as running:
        yield running


@pytest.fixture
def client(server: KitServer) -> Iterator[OpenAI]:
    sdk = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
    yield sdk
    sdk.close()


def weather_thread(client: OpenAI, text: str) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model="qwen-max", tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return assistant.id, thread.id


class Recorder(AssistantEventHandler):
    """Collects what the SDK's event handler hears."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.text = ""
        self.tool_calls: list[Any] = []

    def on_event(self, event: Any) -> None:
        self.names.append(event.event)

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.text += delta.value or ""

    def on_tool_call_done(self, tool_call: Any) -> None:
        self.tool_calls.append(tool_call)


def test_create_and_poll_completes_with_usage(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="qwen-max", instructions="Be kind.")
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread.id, role="user", content="Please draw a picture of a red fox."
    )
    started = time.monotonic()
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert time.monotonic() - started < 5  # openai-poll-after-ms keeps polling quick
    assert run.status == "completed" and run.instructions == "Be kind."
    assert run.usage is not None and run.usage.total_tokens > 0
    assert run.truncation_strategy.type == "auto" and run.parallel_tool_calls is True
    messages = client.beta.threads.messages.list(thread.id)
    assert messages.data[0].content[0].text.value.startswith("Here is a red fox")
    assert messages.data[0].run_id == run.id
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert steps.data[0].step_details.message_creation.message_id == messages.data[0].id
    one = client.beta.threads.runs.steps.retrieve(
        steps.data[0].id, thread_id=thread.id, run_id=run.id
    )
    assert one.usage is not None and one.usage.completion_tokens > 0


def test_stream_with_an_event_handler(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="qwen-max")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Please draw a picture of a ragdoll cat."}]
    )
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
        messages = stream.get_final_messages()
    assert handler.names == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        *["thread.message.delta"] * (len(handler.names) - 10),
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert handler.text == messages[0].content[0].text.value
    assert handler.text.startswith("Here is a ragdoll cat")
    assert final.status == "completed"
    stored = client.beta.threads.runs.retrieve(final.id, thread_id=thread.id)
    assert stored.status == "completed"


def test_parallel_calls_and_submit_tool_outputs_and_poll(client: OpenAI) -> None:
    assistant, thread = weather_thread(client, "Weather in Paris and Rome?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread, assistant_id=assistant)
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)

    with pytest.raises(openai.BadRequestError) as busy:
        client.beta.threads.messages.create(thread, role="user", content="hello?")
    assert (
        busy.value.body["message"]
        == f"Can't add messages to {thread} while a run {run.id} is active."
    )
    with pytest.raises(openai.BadRequestError) as missing:
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread, tool_outputs=[{"tool_call_id": calls[0].id, "output": "x"}]
        )
    assert "every pending call" in missing.value.body["message"]
    assert busy.value.code is None

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread,
        tool_outputs=[
            {"tool_call_id": calls[0].id, "output": "21C"},
            {"tool_call_id": calls[1].id, "output": "18C"},
        ],
    )
    assert run.status == "completed"
    reply = client.beta.threads.messages.list(thread).data[0].content[0].text.value
    assert reply == "The weather is 21C, 18C."
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread, order="asc").data
    tool_step = steps[0].step_details
    assert [c.function.output for c in tool_step.tool_calls] == ["21C", "18C"]


def test_tool_calls_stream_then_submit_tool_outputs_stream(client: OpenAI) -> None:
    assistant, thread = weather_thread(client, "Weather in Oslo and Lima?")
    first = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread, assistant_id=assistant, event_handler=first
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
        steps = stream.get_final_run_steps()
    assert run.status == "requires_action"
    assert first.names[-1] == "thread.run.requires_action"
    # the argument fragments merged into whole calls: id and name were sent once
    snapshot_calls = steps[0].step_details.tool_calls
    assert [c.function.name for c in snapshot_calls] == ["get_weather", "get_weather"]
    assert [json.loads(c.function.arguments) for c in snapshot_calls] == [
        {"city": "Oslo"},
        {"city": "Lima"},
    ]
    assert [c.id for c in snapshot_calls] == [
        c.id for c in run.required_action.submit_tool_outputs.tool_calls
    ]
    second = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id,
        thread_id=thread,
        tool_outputs=[{"tool_call_id": c.id, "output": "5C"} for c in snapshot_calls],
        event_handler=second,
    ) as stream:
        stream.until_done()
    assert second.names[:3] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert second.names[-1] == "thread.run.completed"
    assert second.text == "The weather is 5C, 5C."


def test_create_and_run_stream_starts_with_the_thread(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="qwen-max")
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Please draw a picture of an owl."}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.names[0] == "thread.created" and handler.names[-1] == "thread.run.completed"
    assert handler.text.startswith("Here is a owl") or handler.text.startswith("Here is an owl")


def test_cancel_an_in_progress_run(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="slow")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status in ("cancelling", "cancelled")
    run = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert run.status == "cancelled" and run.cancelled_at is not None
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_runs_waiting_for_outputs_expire(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = write_project(tmp_path_factory.mktemp("kit-runs-expiry"))
    with running_kit_server(
        database=str(folder / "server.db"),
        output_dir=folder,
        extra_args=["--config", str(folder / "kit.yaml"), "--run-expiry", "1"],
    ) as server:
        sdk = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
        try:
            assistant, thread = weather_thread(sdk, "Weather in Bern?")
            run = sdk.beta.threads.runs.create_and_poll(thread_id=thread, assistant_id=assistant)
            assert run.status == "requires_action" and run.expires_at is not None
            time.sleep(1.5)
            run = sdk.beta.threads.runs.retrieve(run.id, thread_id=thread)
            assert run.status == "expired"
            # the thread takes messages again
            sdk.beta.threads.messages.create(thread, role="user", content="still there?")
        finally:
            sdk.close()


def test_a_client_that_leaves_a_stream_does_not_stop_the_run(
    server: KitServer, client: OpenAI
) -> None:
    import httpx

    assistant = client.beta.assistants.create(model="slow")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "count please"}])
    with (
        httpx.Client(trust_env=False, timeout=10) as http,
        http.stream(
            "POST",
            f"{server.openai_url}/threads/{thread.id}/runs",
            json={"assistant_id": assistant.id, "stream": True},
            headers={"Authorization": f"Bearer {server.api_key}"},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        first = next(response.iter_lines())
        assert first == "event: thread.run.created"
        # the connection is closed here, mid-run
    runs = client.beta.threads.runs.list(thread.id).data
    run = client.beta.threads.runs.poll(runs[0].id, thread_id=thread.id, poll_interval_ms=50)
    assert run.status == "completed"
    reply = client.beta.threads.messages.list(thread.id).data[0].content[0].text.value
    assert reply == "one two three four five six seven eight nine ten"
