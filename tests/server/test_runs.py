"""Runs end to end in-process: the api clients drive the app over ``httpx.ASGITransport``.

The scripted backend stands in for the model; a tiny ``BuiltinTool`` defined here stands in for
the built-in tools. Streams are buffered by ASGITransport, which is fine for their content; live
streaming is checked against ``kit serve`` in ``tests/conformance``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from assistant_kit.api import (
    AssistantParams,
    MessageParams,
    RunParams,
    ToolOutput,
    in_process,
)
from assistant_kit.api.base import AssistantClient
from assistant_kit.errors import ApiError
from assistant_kit.server.app import ServerConfig, create_app
from assistant_kit.server.models import Rule, ScriptedBackend, ScriptedCall
from assistant_kit.server.models.base import ModelEvent, ModelRequest
from assistant_kit.server.tools.base import BuiltinTool, ToolContext
from assistant_kit.server.tools.base import ToolOutput as BuiltinOutput

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

RULES = [
    Rule(
        user="(?i)weather in (\\w+) and (\\w+)",
        tool_calls=(
            ScriptedCall("get_weather", {"city": "{1}"}),
            ScriptedCall("get_weather", {"city": "{2}"}),
        ),
    ),
    Rule(user="(?i)weather in (\\w+)", tool_calls=(ScriptedCall("get_weather", {"city": "{1}"}),)),
    Rule(user="(?i)compute (.+)", tool_calls=(ScriptedCall("calculator", {"code": "{1}"}),)),
    Rule(user="(?i)loop forever", tool_calls=(ScriptedCall("calculator", {"code": "1"}),)),
    Rule(
        user="(?i)loop forever",
        after_tool="calculator",
        tool_calls=(ScriptedCall("calculator", {"code": "1"}),),
    ),
    Rule(after_tool="get_weather", reply="Weather: {output}."),
    Rule(after_tool="calculator", reply="The result is {output}."),
    Rule(user="(?i)^long", reply="one two three four five six seven eight nine ten eleven twelve"),
]


class Recorder(ScriptedBackend):
    """The scripted backend, keeping every request it was sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.requests.append(request)
        async for event in super().stream(request):
            yield event


class Calculator(BuiltinTool):
    """A tiny built-in tool: 'runs' code by echoing its length and the code."""

    type = "code_interpreter"

    def definition(self) -> Mapping[str, Any]:
        return {
            "name": "calculator",
            "description": "Run code",
            "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
        }

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> BuiltinOutput:
        code = str(arguments.get("code", ""))
        return BuiltinOutput(output=f"<{code}>", logs=f"ran {code}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_app(tmp_path: Path, **options: Any) -> Any:
    backend = options.pop("backend", None) or Recorder(RULES, default="Hello there!")
    models = options.pop("models", {"default": backend})
    return create_app(
        ServerConfig(
            database=tmp_path / "kit.db",
            models=models,
            tools=options.pop("tools", {"code_interpreter": Calculator()}),
            **options,
        )
    ), backend


async def setup(client: AssistantClient, text: str, **assistant: Any) -> tuple[str, str]:
    bot = await client.create_assistant(
        AssistantParams(
            model=assistant.pop("model", "demo"),
            tools=assistant.pop("tools", [WEATHER]),
            **assistant,
        )
    )
    thread = await client.create_thread(messages=[MessageParams(text)])
    return bot.id, thread.id


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_a_run_completes_with_a_reply_usage_and_steps(tmp_path: Path, dialect: str) -> None:
    app, _ = make_app(tmp_path)
    async with in_process(app, dialect=dialect) as client:
        bot, thread = await setup(client, "hi", instructions="Be kind.")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        assert run.status in ("queued", "in_progress", "completed")
        run = await client.wait_run(thread, run.id)
        assert run.status == "completed"
        assert run.usage is not None and run.usage.total_tokens > 0
        assert run.instructions == "Be kind."
        if dialect == "dashscope":
            assert {"input_tokens", "output_tokens", "prompt_tokens"} <= set(run.raw["usage"])
            assert run.id.startswith("run_") and run.raw["created_at"] > 10**12
        messages = await client.list_all_messages(thread)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[1].text == "Hello there!" and messages[1].run_id == run.id
        steps = (await client.list_run_steps(thread, run.id)).data
        assert [s.type for s in steps] == ["message_creation"]
        assert steps[0].message_id == messages[1].id and steps[0].status == "completed"
        assert (await client.get_run_step(thread, run.id, steps[0].id)).id == steps[0].id
        updated = await client.update_run(thread, run.id, metadata={"k": "v"})
        assert updated.metadata == {"k": "v"}
        assert [r.id for r in (await client.list_runs(thread)).data] == [run.id]


@pytest.mark.anyio
async def test_parallel_function_calls_wait_for_every_output_then_the_run_resumes(
    tmp_path: Path,
) -> None:
    app, backend = make_app(tmp_path)
    async with in_process(app) as client:
        bot, thread = await setup(client, "weather in Paris and Rome")
        run = await client.wait_run(
            thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
        )
        assert run.status == "requires_action"
        calls = run.required_tool_calls
        assert [c.args for c in calls] == [{"city": "Paris"}, {"city": "Rome"}]
        assert len({c.id for c in calls}) == 2
        with pytest.raises(ApiError) as info:
            await client.submit_tool_outputs(thread, run.id, [ToolOutput(calls[0].id, "21C")])
        assert info.value.status == 400
        with pytest.raises(ApiError) as busy:
            await client.create_message(thread, MessageParams("more"))
        assert busy.value.status == 400 and "while a run" in busy.value.message
        with pytest.raises(ApiError) as busy_run:
            await client.create_run(thread, RunParams(assistant_id=bot))
        assert busy_run.value.message == f"Thread {thread} already has an active run {run.id}."
        resumed = await client.submit_tool_outputs(
            thread, run.id, [ToolOutput(calls[1].id, "18C"), ToolOutput(calls[0].id, "21C")]
        )
        assert resumed.id == run.id and resumed.status in ("queued", "in_progress", "completed")
        run = await client.wait_run(thread, run.id)
        assert run.status == "completed"
        messages = await client.list_all_messages(thread)
        assert messages[-1].text == "Weather: 21C, 18C."
        steps = (await client.list_run_steps(thread, run.id)).data
        assert [s.type for s in steps] == ["tool_calls", "message_creation"]
        assert [(c.name, c.output) for c in steps[0].tool_calls] == [
            ("get_weather", "21C"),
            ("get_weather", "18C"),
        ]
    last = backend.requests[-1]
    assert [m.role for m in last.messages] == ["user", "assistant", "tool", "tool"]


@pytest.mark.anyio
async def test_dashscope_outputs_without_ids_match_by_position(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with in_process(app, dialect="dashscope") as client:
        bot, thread = await setup(client, "weather in Oslo")
        run = await client.wait_run(
            thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
        )
        assert run.status == "requires_action"
        await client.submit_tool_outputs(thread, run.id, [ToolOutput("", "-3C")])
        run = await client.wait_run(thread, run.id)
        assert run.status == "completed"
        assert (await client.list_all_messages(thread))[-1].text == "Weather: -3C."


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_a_builtin_tool_runs_in_the_server_and_records_its_step(
    tmp_path: Path, dialect: str
) -> None:
    app, backend = make_app(tmp_path)
    async with in_process(app, dialect=dialect) as client:
        bot, thread = await setup(
            client, "compute 6*7", tools=[{"type": "code_interpreter"}, {"type": "wanx"}]
        )
        run = await client.wait_run(
            thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
        )
        assert run.status == "completed"
        assert (await client.list_all_messages(thread))[-1].text == "The result is <6*7>."
        step = (await client.list_run_steps(thread, run.id)).data[0]
        call = step.raw["step_details"]["tool_calls"][0]
        # the dialect renders the neutral call: a code_interpreter call in both, its logs in
        # OpenAI's outputs, its output text beside DashScope's (always empty) outputs
        assert call["type"] == "code_interpreter"
        assert call["code_interpreter"]["input"] == "6*7"
        if dialect == "openai":
            assert call["code_interpreter"]["outputs"] == [{"type": "logs", "logs": "ran 6*7"}]
        else:
            assert call["code_interpreter"]["output"] == "<6*7>"
            assert call["code_interpreter"]["outputs"] == []
    # wanx has no tool configured: the model never saw it
    assert [t["function"]["name"] for t in backend.requests[0].tools] == ["calculator"]


@pytest.mark.anyio
async def test_the_step_cap_ends_a_tool_loop_with_tool_choice_none(tmp_path: Path) -> None:
    app, backend = make_app(tmp_path, max_model_calls=3)
    async with in_process(app) as client:
        bot, thread = await setup(client, "loop forever", tools=[{"type": "code_interpreter"}])
        run = await client.wait_run(
            thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
        )
        assert run.status == "completed"
    assert [r.tool_choice for r in backend.requests] == ["auto", "auto", "auto", "none"]


@pytest.mark.anyio
async def test_an_unroutable_model_fails_the_run_with_a_clear_last_error(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, models={"demo": ScriptedBackend()})
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi", model="nobody")
        run = await client.wait_run(
            thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
        )
        assert run.status == "failed"
        assert (
            run.last_error is not None
            and 'no backend for model "nobody"' in run.last_error["message"]
        )


@pytest.mark.anyio
async def test_token_limits_end_the_run_incomplete(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with in_process(app) as client:
        bot, thread = await setup(client, "long answer please")
        run = await client.create_run(thread, RunParams(assistant_id=bot, max_completion_tokens=3))
        run = await client.wait_run(thread, run.id)
        assert run.status == "incomplete"
        assert run.incomplete_details == {"reason": "max_completion_tokens"}
        message = (await client.list_all_messages(thread))[-1]
        assert message.text == "one two three" and message.status == "incomplete"
        run = await client.create_run(thread, RunParams(assistant_id=bot, max_prompt_tokens=2))
        run = await client.wait_run(thread, run.id)
        assert run.status == "incomplete"
        assert run.incomplete_details == {"reason": "max_prompt_tokens"}


@pytest.mark.anyio
async def test_truncation_last_messages_and_overrides_reach_the_model(tmp_path: Path) -> None:
    app, backend = make_app(tmp_path)
    async with in_process(app) as client:
        bot, thread = await setup(client, "first")
        params = RunParams(
            assistant_id=bot,
            instructions="Override.",
            additional_instructions="Also this.",
            additional_messages=[MessageParams("second"), MessageParams("third")],
            truncation_strategy={"type": "last_messages", "last_messages": 2},
            temperature=0.3,
            tool_choice="none",
        )
        run = await client.wait_run(thread, (await client.create_run(thread, params)).id)
        assert run.status == "completed"
        assert run.raw["truncation_strategy"] == {"type": "last_messages", "last_messages": 2}
    request = backend.requests[-1]
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Override.\n\nAlso this."),
        ("user", "second"),
        ("user", "third"),
    ]
    assert request.temperature == 0.3 and request.tool_choice == "none"


@pytest.mark.anyio
async def test_cancel_from_requires_action_and_from_in_progress(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, backend=ScriptedBackend(RULES, delay_ms=5000))
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        await asyncio.sleep(0.05)
        cancelling = await client.cancel_run(thread, run.id)
        assert cancelling.status in ("cancelling", "cancelled")
        run = await client.wait_run(thread, run.id, timeout=5)
        assert run.status == "cancelled"
        with pytest.raises(ApiError) as info:
            await client.cancel_run(thread, run.id)
        assert info.value.status == 400
    app, _ = make_app(tmp_path / "b")
    async with in_process(app) as client:
        bot, thread = await setup(client, "weather in Lima")
        run = await client.wait_run(
            thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
        )
        assert run.status == "requires_action"
        await client.cancel_run(thread, run.id)
        assert (await client.get_run(thread, run.id)).status == "cancelled"
        # the thread is free again
        await client.create_message(thread, MessageParams("hello again"))


@pytest.mark.anyio
async def test_runs_waiting_for_outputs_expire(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, run_expiry_s=0.3)
    async with in_process(app) as client:
        bot, thread = await setup(client, "weather in Lima")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        assert run.expires_at is not None
        run = await client.wait_run(thread, run.id)
        assert run.status == "requires_action"
        await asyncio.sleep(0.6)
        run = await client.get_run(thread, run.id)
        assert run.status == "expired" and run.expires_at is None
        with pytest.raises(ApiError):
            await client.submit_tool_outputs(thread, run.id, [ToolOutput("", "x")])


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_streams_carry_the_documented_event_order(tmp_path: Path, dialect: str) -> None:
    app, _ = make_app(tmp_path)
    async with in_process(app, dialect=dialect) as client:
        bot, _thread = await setup(client, "unused")
        events = [
            e
            async for e in client.stream_thread_and_run(
                RunParams(assistant_id=bot), messages=[MessageParams("weather in Paris")]
            )
        ]
        names = [e.event for e in events]
        assert names == [
            "thread.created",
            "thread.run.created",
            "thread.run.queued",
            "thread.run.in_progress",
            "thread.run.step.created",
            "thread.run.step.in_progress",
            "thread.run.step.delta",
            "thread.run.step.delta",
            "thread.run.requires_action",
            "done",
        ]
        thread = events[0].object.id
        run = events[-2].run
        assert run is not None and run.requires_action
        outputs = [ToolOutput(run.required_tool_calls[0].id, "21C")]
        events = [e async for e in client.stream_submit_tool_outputs(thread, run.id, outputs)]
        names = [e.event for e in events]
        assert names[:3] == [
            "thread.run.step.completed",
            "thread.run.queued",
            "thread.run.in_progress",
        ]
        assert names[-3:] == ["thread.run.step.completed", "thread.run.completed", "done"]
        assert "".join(e.text for e in events) == "Weather: 21C."
        assert (await client.get_run(thread, run.id)).status == "completed"


class Stutter(ScriptedBackend):
    """Says a word, thinks for a while, says the rest: a slow model's rhythm."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        from assistant_kit.server.models.base import Finish, TextDelta

        yield TextDelta("Thinking")
        await asyncio.sleep(0.4)
        yield TextDelta(" done.")
        yield Finish("stop")


@pytest.mark.anyio
async def test_a_slow_model_is_logged_as_it_goes_and_late_readers_miss_nothing(
    tmp_path: Path,
) -> None:
    app, _ = make_app(tmp_path, backend=Stutter())
    engine = app.state.context.engine
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        await asyncio.sleep(0.2)
        uid = run.id.removeprefix("run_")
        so_far = [e.event for e in engine.store.events_after(uid, 0)]
        assert "thread.message.delta" in so_far and "thread.run.completed" not in so_far
        run = await client.wait_run(thread, run.id)
        assert run.status == "completed"
        # a reader that comes after the end still gets the whole log, up to done
        names = [e.event async for batch in engine.event_batches(uid, 0) for e in batch]
        assert names[0] == "thread.run.created" and names[-2:] == ["thread.run.completed", "done"]
        assert (await client.list_all_messages(thread))[-1].text == "Thinking done."


@pytest.mark.anyio
async def test_a_run_cancelled_before_its_task_starts_ends_cancelled(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    engine = app.state.context.engine
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi")
        created = await client.create_run(thread, RunParams(assistant_id=bot))
        await client.wait_run(thread, created.id)
        from assistant_kit.server.routes.runs import build_run

        assistant = await app.state.context.services.get_assistant(bot.removeprefix("asst_"))
        run = build_run(engine, assistant, thread.removeprefix("thread_"), {})
        engine.create_run(run)
        assert engine.cancel(run.thread_id, run.id).status == "cancelling"
        await asyncio.sleep(0.05)
        assert (await client.get_run(thread, f"run_{run.id}")).status == "cancelled"


@pytest.mark.anyio
async def test_the_reaper_resumes_or_finishes_what_a_stop_left(tmp_path: Path) -> None:
    import sqlite3

    app, _ = make_app(tmp_path)
    ids: dict[str, tuple[str, str]] = {}
    async with in_process(app) as client:
        for name, text in [
            ("queued", "hi"),
            ("in_progress", "hi"),
            ("cancelling", "hi"),
            ("waiting", "weather in Kyiv"),
        ]:
            bot, thread = await setup(client, text)
            run = await client.wait_run(
                thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
            )
            ids[name] = (thread, run.id)
    # make the stored runs look like a crash caught them mid-way
    db = sqlite3.connect(tmp_path / "kit.db")
    for name in ("queued", "in_progress", "cancelling"):
        uid = ids[name][1].removeprefix("run_")
        db.execute("UPDATE runs SET status = ? WHERE id = ?", (name, uid))
        db.execute("DELETE FROM messages WHERE run_id = ?", (uid,))
        db.execute("DELETE FROM run_steps WHERE run_id = ?", (uid,))
    db.commit()
    db.close()

    app, _ = make_app(tmp_path)
    async with in_process(app) as client:
        final = {
            name: (await client.wait_run(thread, run_id, timeout=5)).status
            for name, (thread, run_id) in ids.items()
        }
        assert final == {
            "queued": "completed",
            "in_progress": "completed",
            "cancelling": "cancelled",
            "waiting": "requires_action",
        }
        thread = ids["in_progress"][0]
        assert (await client.list_all_messages(thread))[-1].text == "Hello there!"


class Painter(Calculator):
    """A built-in of another type than code_interpreter, enabled by its old name (``wanx``)."""

    type = "text_to_image"
    aliases = ("wanx",)


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_a_builtin_step_shows_the_tools_own_type_in_dashscope_and_a_function_in_openai(
    tmp_path: Path, dialect: str
) -> None:
    app, _ = make_app(tmp_path, tools={"text_to_image": Painter()})
    async with in_process(app, dialect=dialect) as client:
        bot, thread = await setup(client, "compute 1", tools=[{"type": "wanx"}])
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        run = await client.wait_run(thread, run.id)
        step = (await client.list_run_steps(thread, run.id)).data[0]
        call = step.raw["step_details"]["tool_calls"][0]
        if dialect == "openai":
            assert call["type"] == "function"
            assert call["function"] == {
                "name": "calculator",
                "arguments": '{"code": "1"}',
                "output": "<1>",
            }
        else:
            assert call["text_to_image"] == {"arguments": '{"code": "1"}', "output": "<1>"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({}, "assistant_id", id="no-assistant"),
        pytest.param({"assistant_id": "asst_x", "temperature": "hot"}, "temperature", id="temp"),
        pytest.param({"assistant_id": "asst_x", "tools": [1]}, "tools", id="tools"),
        pytest.param(
            {"assistant_id": "asst_x", "truncation_strategy": {"type": "x"}},
            "truncation_strategy",
            id="truncation",
        ),
        pytest.param({"assistant_id": "asst_x", "tool_choice": "maybe"}, "tool_choice", id="tc"),
        pytest.param(
            {"assistant_id": "asst_x", "metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata",
            id="metadata",
        ),
    ],
)
async def test_bad_run_bodies_are_400s_never_500s(
    tmp_path: Path, body: dict[str, Any], param: str
) -> None:
    import httpx

    app, _ = make_app(tmp_path)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kit",
            headers={"Authorization": "Bearer k"},
        ) as http,
    ):
        thread = (await http.post("/v1/threads", json={})).json()["id"]
        response = await http.post(f"/v1/threads/{thread}/runs", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        missing = await http.post(f"/v1/threads/{thread}/runs", json={"assistant_id": "asst_x"})
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "No assistant found with id 'asst_x'."
        ds = await http.post(f"/api/v1/threads/{thread}/runs", json=body)
        assert ds.status_code == 400 and ds.json()["code"] == "InvalidParameter"


@pytest.mark.anyio
async def test_a_builtin_tool_choice_forces_its_function(tmp_path: Path) -> None:
    app, backend = make_app(tmp_path)
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi", tools=[WEATHER, {"type": "code_interpreter"}])
        params = RunParams(assistant_id=bot, tool_choice={"type": "code_interpreter"})
        run = await client.wait_run(thread, (await client.create_run(thread, params)).id)
        assert run.status == "completed"
    assert backend.requests[0].tool_choice == {
        "type": "function",
        "function": {"name": "calculator"},
    }


@pytest.mark.anyio
async def test_event_logs_of_finished_runs_are_pruned_after_the_retention(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    engine = app.state.context.engine
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi")
        run = await client.wait_run(
            thread, (await client.create_run(thread, RunParams(assistant_id=bot))).id
        )
        uid = run.id.removeprefix("run_")
        assert engine.store.events_after(uid, 0)
        assert engine.prune_events() == 0  # still within the retention
        engine.settings = dataclasses.replace(engine.settings, event_retention_s=-1)
        assert engine.prune_events() > 0
        assert engine.store.events_after(uid, 0) == []
        assert (await client.get_run(thread, run.id)).status == "completed"


@pytest.mark.anyio
async def test_deleting_a_thread_mid_run_leaves_nothing_behind(tmp_path: Path) -> None:
    import sqlite3

    app, _ = make_app(tmp_path, backend=Stutter())
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi")
        await client.create_run(thread, RunParams(assistant_id=bot))
        await asyncio.sleep(0.2)  # the first words are logged, the model still talks
        await client.delete_thread(thread)
        await asyncio.sleep(0.4)
    db = sqlite3.connect(tmp_path / "kit.db")
    counts = [
        db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("messages", "runs", "run_steps", "run_events")
    ]
    db.close()
    assert counts == [0, 0, 0, 0]


class ClosingBackend(ScriptedBackend):
    """A backend whose model call breaks once the backend is closed, as an HTTP client's
    in-flight request does when the client is closed under it."""

    def __init__(self) -> None:
        super().__init__([], default="never")
        self.started = asyncio.Event()
        self.closed = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        self.started.set()
        await self.closed.wait()
        raise RuntimeError("Cannot send a request, as the client has been closed.")
        yield  # pragma: no cover - an async generator

    async def aclose(self) -> None:
        self.closed.set()
        await asyncio.sleep(0)


@pytest.mark.anyio
async def test_shutdown_stops_runs_before_closing_backends_so_the_next_start_resumes_them(
    tmp_path: Path,
) -> None:
    backend = ClosingBackend()
    app, _ = make_app(tmp_path, backend=backend)
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        await asyncio.wait_for(backend.started.wait(), 5)
    # A second app on the same file, no lifespan: the stored run as the shutdown left it.
    after, _ = make_app(tmp_path)
    context = after.state.context
    context.store.open()
    try:
        stored = context.engine.store.get_run(run.id.removeprefix("run_"))
    finally:
        context.store.close()
    assert stored is not None and stored.status == "in_progress", stored


class ToolHappy(ScriptedBackend):
    """A model that calls a function whatever ``tool_choice`` says (hosted models do)."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        from assistant_kit.server.models.base import Finish, ToolCallDelta

        yield ToolCallDelta(0, '{"city": "Oslo"}', name="get_weather")
        yield Finish("tool_calls")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cap", "tool_choice", "says"),
    [
        pytest.param(1, None, "step cap", id="the-cap"),
        pytest.param(25, "none", "tool_choice is 'none'", id="the-callers-none"),
    ],
)
async def test_a_model_that_ignores_tool_choice_none_fails_the_run_saying_why(
    tmp_path: Path, cap: int, tool_choice: str | None, says: str
) -> None:
    app, _ = make_app(tmp_path, backend=ToolHappy(), max_model_calls=cap)
    async with in_process(app) as client:
        bot, thread = await setup(client, "weather in Oslo")
        first = await client.create_run(thread, RunParams(assistant_id=bot))
        run = await client.wait_run(thread, first.id)
        if cap == 1:  # the first call may use tools; the run waits for their output
            assert run.status == "requires_action"
            call = run.required_tool_calls[0]
            await client.submit_tool_outputs(thread, run.id, [ToolOutput(call.id, "1C")])
            run = await client.wait_run(thread, run.id)
        else:
            await client.cancel_run(thread, run.id)
            await client.wait_run(thread, run.id)
            params = RunParams(assistant_id=bot, tool_choice=tool_choice)
            run = await client.wait_run(thread, (await client.create_run(thread, params)).id)
        assert run.status == "failed"
        assert run.last_error is not None and says in run.last_error["message"]


@pytest.mark.anyio
async def test_a_second_server_on_the_same_file_leaves_the_first_ones_runs_alone(
    tmp_path: Path,
) -> None:
    """``kit apply --target local`` opens ``.kit/server.db`` while ``kit serve`` may be driving
    runs on it: the second engine's orphan sweep must not fail runs it never drove."""
    other, _ = make_app(tmp_path)
    app, _ = make_app(tmp_path, backend=ScriptedBackend([], default="slow", delay_ms=1500))
    async with other.router.lifespan_context(other), in_process(app) as client:
        bot, thread = await setup(client, "hi")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        run = await client.wait_run(thread, run.id, timeout=10)
        assert run.status == "completed", run.last_error


@pytest.mark.anyio
async def test_a_second_server_starting_on_the_same_file_does_not_resume_live_runs(
    tmp_path: Path,
) -> None:
    """The start-up reaper is for what a crash left; while another live server holds the file,
    its in-progress runs are its own (a second driver would duplicate the reply)."""
    app, _ = make_app(tmp_path, backend=ScriptedBackend([], default="slow", delay_ms=1000))
    async with in_process(app) as client:
        bot, thread = await setup(client, "hi")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        for _ in range(100):
            if (await client.get_run(thread, run.id)).status == "in_progress":
                break
            await asyncio.sleep(0.01)
        other, _ = make_app(tmp_path)
        async with other.router.lifespan_context(other):
            run = await client.wait_run(thread, run.id, timeout=10)
        assert run.status == "completed", run.last_error
        messages = await client.list_all_messages(thread)
        assert [(m.role, m.text) for m in messages] == [("user", "hi"), ("assistant", "slow")]
        steps = (await client.list_run_steps(thread, run.id)).data
        assert [(s.type, s.status) for s in steps] == [("message_creation", "completed")]


class TalksAroundItsCalls(ScriptedBackend):
    """A model that writes text before and after its tool call in one turn."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        from assistant_kit.server.models.base import Finish, TextDelta, ToolCallDelta

        if request.messages[-1].role == "tool":
            yield TextDelta("It is 3C.")
            yield Finish("stop")
            return
        yield TextDelta("Let me check. ")
        yield ToolCallDelta(0, '{"city": "Oslo"}', name="get_weather")
        yield TextDelta("One moment.")
        yield Finish("tool_calls")


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_text_after_a_tool_call_is_a_completed_message_of_its_own(
    tmp_path: Path, dialect: str
) -> None:
    app, _ = make_app(tmp_path, backend=TalksAroundItsCalls())
    async with in_process(app, dialect=dialect) as client:
        bot, thread = await setup(client, "weather in Oslo")
        run = await client.create_run(thread, RunParams(assistant_id=bot))
        run = await client.wait_run(thread, run.id)
        assert run.status == "requires_action"
        call = run.required_tool_calls[0]
        await client.submit_tool_outputs(thread, run.id, [ToolOutput(call.id, "3C")])
        assert (await client.wait_run(thread, run.id)).status == "completed"
        messages = await client.list_all_messages(thread)
        assert [(m.text, m.raw["status"]) for m in messages] == [
            ("weather in Oslo", "completed"),
            ("Let me check. ", "completed"),
            ("One moment.", "completed"),
            ("It is 3C.", "completed"),
        ]
        steps = (await client.list_run_steps(thread, run.id, order="asc")).data
        assert [(s.type, s.status) for s in steps] == [
            ("message_creation", "completed"),
            ("tool_calls", "completed"),
            ("message_creation", "completed"),
            ("message_creation", "completed"),
        ]
