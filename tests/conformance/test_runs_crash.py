"""A ``kit serve`` killed with SIGKILL mid-run: after a restart on the same SQLite file every run
ends in a terminal state, and nothing stored before the crash is lost."""

from __future__ import annotations

import signal
import time

import pytest
from kit_server import running_kit_server
from openai import OpenAI
from runs_project import WEATHER_TOOL, write_project


def test_a_crash_mid_run_loses_nothing(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = write_project(tmp_path_factory.mktemp("kit-crash"), delay_ms=3000)
    database = str(folder / "server.db")
    with running_kit_server(database=database, output_dir=folder) as server:
        sdk = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
        slow = sdk.beta.assistants.create(model="slow", name="Slow")
        fast = sdk.beta.assistants.create(model="qwen-max", tools=[WEATHER_TOOL])
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "count please"}])
        run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=slow.id)
        waiting_thread = sdk.beta.threads.create(
            messages=[{"role": "user", "content": "Weather in Quito?"}]
        )
        waiting = sdk.beta.threads.runs.create_and_poll(
            thread_id=waiting_thread.id, assistant_id=fast.id
        )
        assert waiting.status == "requires_action"
        deadline = time.monotonic() + 5
        while sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        sdk.close()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        assert server.process.returncode == -signal.SIGKILL

    with running_kit_server(database=database, output_dir=folder) as server:
        sdk = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
        try:
            resumed = sdk.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)
            assert resumed.status == "completed"
            texts = [m.content[0].text.value for m in sdk.beta.threads.messages.list(thread.id)]
            assert texts == ["one two three four five six seven eight nine ten", "count please"]
            assert sdk.beta.assistants.retrieve(slow.id).name == "Slow"

            still = sdk.beta.threads.runs.retrieve(waiting.id, thread_id=waiting_thread.id)
            assert still.status == "requires_action"
            calls = still.required_action.submit_tool_outputs.tool_calls
            assert [c.id for c in calls] == [
                c.id for c in waiting.required_action.submit_tool_outputs.tool_calls
            ]
            done = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
                run_id=waiting.id,
                thread_id=waiting_thread.id,
                tool_outputs=[{"tool_call_id": calls[0].id, "output": "15C"}],
            )
            assert done.status == "completed"
            reply = sdk.beta.threads.messages.list(waiting_thread.id).data[0]
            assert reply.content[0].text.value == "The weather is 15C."
        finally:
            sdk.close()
