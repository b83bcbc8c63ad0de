"""TurnDriver against the embedded server (scripted model), in both dialects: tool calls answered
through the hook, every event seen, and a turn cut short leaves no run going on its thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assistant_kit.api import AssistantClient, AssistantParams, ToolOutput, TurnDriver
from assistant_kit.api.local import in_process
from assistant_kit.api.runs import RemoteRun, StreamEvent
from assistant_kit.errors import ApiError
from assistant_kit.server.app import ServerConfig, create_app

pytestmark = pytest.mark.anyio

RULES = [
    {"user": "(?i)order (\\d+)", "tool_calls": [{"name": "get_order", "arguments": '{"id": {1}}'}]},
    {"after_tool": "get_order", "reply": "Order status: {output}"},
    {"user": "(?i)hello", "reply": "Hello there!"},
]
GET_ORDER = {
    "type": "function",
    "function": {
        "name": "get_order",
        "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
    },
}


@pytest.fixture(params=["openai", "dashscope"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AssistantClient]:
    models = {"default": {"backend": "scripted", "rules": RULES}}
    app = create_app(ServerConfig(database=str(tmp_path / "kit.db"), models=models))
    async with in_process(app, dialect=request.param) as client:
        yield client


async def assistant(client: AssistantClient) -> str:
    bot = await client.create_assistant(AssistantParams(model="qwen-plus", tools=[GET_ORDER]))
    return bot.id


async def shipped(run: RemoteRun) -> list[ToolOutput]:
    return [ToolOutput(call.id, '{"status": "shipped"}') for call in run.required_tool_calls]


async def test_a_tool_call_is_answered_by_the_hook_and_every_event_is_seen(
    client: AssistantClient,
) -> None:
    seen: list[StreamEvent] = []
    driver = TurnDriver(client, await assistant(client), answer=shipped, see=seen.append)

    turn = await driver.send("Where is order 42?")

    assert turn.status == "completed" and turn.problem is None and not turn.declined
    assert turn.reply == 'Order status: {"status": "shipped"}'
    names = [e.event for e in seen]
    assert "thread.run.requires_action" in names and names.count("done") == 2
    assert "thread.message.delta" in names
    assert len(turn.run_ids) == 1 and driver.thread_id is not None


async def test_turns_after_the_first_go_on_the_same_thread(client: AssistantClient) -> None:
    driver = TurnDriver(client, await assistant(client), answer=shipped)
    await driver.send("hello")
    thread_id = driver.thread_id
    second = await driver.send("Where is order 7?")
    assert driver.thread_id == thread_id and second.status == "completed"
    assert thread_id is not None
    texts = [m.text for m in await client.list_all_messages(thread_id)]
    assert texts == [
        "hello",
        "Hello there!",
        "Where is order 7?",
        'Order status: {"status": "shipped"}',
    ]


async def test_a_hook_that_gives_up_cancels_the_run_and_the_thread_goes_on(
    client: AssistantClient,
) -> None:
    async def give_up(run: RemoteRun) -> None:
        return None

    driver = TurnDriver(client, await assistant(client), answer=give_up)
    turn = await driver.send("Where is order 42?")
    assert turn.declined and turn.run is not None and turn.run.status in ("cancelling", "cancelled")

    driver.answer = shipped
    assert (await driver.send("hello")).reply == "Hello there!"


async def test_without_an_answer_hook_a_tool_call_is_declined(client: AssistantClient) -> None:
    turn = await TurnDriver(client, await assistant(client)).send("Where is order 42?")
    assert turn.declined and turn.status in ("cancelling", "cancelled")


async def test_a_cancelled_turn_cancels_its_run_so_the_next_message_is_accepted(
    client: AssistantClient,
) -> None:
    """Ctrl-C in `kit chat` cancels the task playing the turn: the run must not stay behind."""
    waiting = asyncio.Event()

    async def never(run: RemoteRun) -> list[ToolOutput]:
        waiting.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    driver = TurnDriver(client, await assistant(client), answer=never)
    task = asyncio.ensure_future(driver.send("Where is order 42?"))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert driver.turn.cut_short_in == "requires_action"
    assert driver.thread_id is not None
    run = (await client.list_runs(driver.thread_id, limit=1)).data[0]
    assert run.status in ("cancelling", "cancelled")
    driver.answer = shipped
    assert (await driver.send("hello")).reply == "Hello there!"


async def test_an_api_error_comes_through_with_what_the_turn_had_done(
    client: AssistantClient,
) -> None:
    driver = TurnDriver(client, "asst_nonexistent")
    with pytest.raises(ApiError):
        await driver.send("hello")
    assert driver.thread_id is not None and driver.turn.run is None
