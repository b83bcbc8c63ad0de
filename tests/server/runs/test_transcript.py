from __future__ import annotations

import pytest

from assistant_kit.server.models.base import ChatMessage, ToolCall
from assistant_kit.server.models.scripted import ScriptedBackend
from assistant_kit.server.runs.transcript import (
    HistoryItem,
    ThreadMessage,
    ToolStep,
    Truncation,
    build_prompt,
    render_item,
    system_message,
)

WEATHER = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
TIME = ToolCall("call_2", "get_time", '{"city": "Paris"}')


def whole(instructions: str | None, history: list[HistoryItem]) -> list[ChatMessage]:
    """The prompt of a history that fits the window: the whole transcript, in order."""
    return list(
        build_prompt(ScriptedBackend(), instructions=instructions, history=history).messages
    )


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def conversation(turns: int, size: int = 10) -> list[HistoryItem]:
    history: list[HistoryItem] = []
    for t in range(turns):
        history.append(ThreadMessage("user", words(size, f"u{t}_")))
        history.append(ToolStep((ToolCall(f"c{t}", "lookup", "{}"),), (words(size, f"o{t}_"),)))
        history.append(ThreadMessage("assistant", words(size, f"a{t}_")))
    return history


def assert_pairs_intact(messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> None:
    """Every tool message answers a call of the assistant message just before its group."""
    pending: set[str] = set()
    for m in messages:
        if m.role == "tool":
            assert m.tool_call_id in pending
            pending.discard(m.tool_call_id or "")
        else:
            assert not pending, "a tool call lost its output"
            pending = {c.id for c in m.tool_calls}
    assert not pending


def test_system_holds_instructions_and_additional_instructions() -> None:
    assert system_message("Be brief.", "Call the user Sam.") == ChatMessage(
        "system", "Be brief.\n\nCall the user Sam."
    )
    assert system_message("", None) is None
    assert system_message(None, "Only this.") == ChatMessage("system", "Only this.")


def test_history_becomes_messages_in_order_with_tool_pairs() -> None:
    history: list[HistoryItem] = [
        ThreadMessage("user", "Weather and time in Paris?"),
        ToolStep((WEATHER, TIME), ("sunny", "noon")),
        ThreadMessage("assistant", "Sunny at noon."),
    ]
    assert whole("Be brief.", history) == [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather and time in Paris?"),
        ChatMessage("assistant", "", tool_calls=(WEATHER, TIME)),
        ChatMessage("tool", "sunny", tool_call_id="call_1"),
        ChatMessage("tool", "noon", tool_call_id="call_2"),
        ChatMessage("assistant", "Sunny at noon."),
    ]


def test_unanswered_calls_are_left_out_and_empty_ids_get_one() -> None:
    history: list[HistoryItem] = [
        ThreadMessage("user", "x"),
        ToolStep((WEATHER, TIME), ("sunny", None)),
        ToolStep((WEATHER,), ()),
        ToolStep((ToolCall("", "f", "{}"),), ("out",), content="Checking."),
    ]
    messages = whole(None, history)
    assert messages[1] == ChatMessage("assistant", "", tool_calls=(WEATHER,))
    assert messages[2] == ChatMessage("tool", "sunny", tool_call_id="call_1")
    assert messages[3].content == "Checking."
    assert messages[3].tool_calls[0].id == messages[4].tool_call_id != ""
    assert len(messages) == 5


def test_everything_fits_so_nothing_is_dropped() -> None:
    backend = ScriptedBackend()
    history = conversation(3)
    prompt = build_prompt(backend, instructions="Be brief.", history=history)
    rendered = [m for i, item in enumerate(history) for m in render_item(item, i)]
    assert list(prompt.messages) == [ChatMessage("system", "Be brief."), *rendered]
    assert prompt.tokens == backend.count_tokens(prompt.messages)
    assert prompt.dropped == 0 and prompt.incomplete_reason is None


def test_last_messages_keeps_the_newest_messages_and_their_tool_steps() -> None:
    history = conversation(3)
    prompt = build_prompt(
        ScriptedBackend(),
        instructions="sys",
        history=history,
        truncation=Truncation("last_messages", 2),
    )
    # The last two thread messages are the third turn's user and assistant messages;
    # the tool step between them stays with them.
    assert [m.role for m in prompt.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert prompt.messages[1].content.startswith("u2_")
    assert prompt.dropped == 6
    assert_pairs_intact(prompt.messages)


def test_last_messages_never_keeps_an_orphan_tool_output() -> None:
    history: list[HistoryItem] = [
        ThreadMessage("user", "q1"),
        ToolStep((WEATHER,), ("sunny",)),
        ThreadMessage("user", "q2"),
        ToolStep((TIME,), ("noon",)),
    ]
    prompt = build_prompt(
        ScriptedBackend(),
        instructions=None,
        history=history,
        truncation=Truncation("last_messages", 1),
    )
    assert [m.role for m in prompt.messages] == ["user", "assistant", "tool"]
    assert_pairs_intact(prompt.messages)


def test_truncation_from_the_wire_form() -> None:
    assert Truncation.from_api(None) == Truncation()
    assert Truncation.from_api({"type": "auto", "last_messages": None}) == Truncation()
    assert Truncation.from_api({"type": "last_messages", "last_messages": 3}) == Truncation(
        "last_messages", 3
    )


def test_auto_fits_the_context_window_dropping_the_oldest_turns() -> None:
    backend = ScriptedBackend(context_window=200)
    history = conversation(6)
    prompt = build_prompt(backend, instructions="Be brief.", history=history)
    assert prompt.tokens <= 200 - 50  # reserve: a quarter of the window
    assert prompt.tokens == backend.count_tokens(prompt.messages)
    assert prompt.messages[0] == ChatMessage("system", "Be brief.")
    assert prompt.messages[1].role == "user"  # opens with a whole user turn
    assert prompt.messages[-1].content.startswith("a5_")  # the newest turn is kept
    assert prompt.dropped > 0
    assert_pairs_intact(prompt.messages)
    assert prompt.incomplete_reason is None


def test_auto_honours_max_prompt_tokens() -> None:
    backend = ScriptedBackend()
    history = conversation(6)
    prompt = build_prompt(backend, instructions="sys", history=history, max_prompt_tokens=100)
    assert prompt.tokens <= 100
    assert prompt.incomplete_reason is None
    assert_pairs_intact(prompt.messages)


@pytest.mark.parametrize("turns", [1, 2, 5, 9])
@pytest.mark.parametrize("budget", [60, 90, 130, 400])
def test_auto_always_keeps_system_and_newest_user_turn(turns: int, budget: int) -> None:
    backend = ScriptedBackend()
    history = conversation(turns, size=7)
    history.append(ThreadMessage("user", "latest question"))
    prompt = build_prompt(backend, instructions="sys", history=history, max_prompt_tokens=budget)
    assert prompt.messages[0].role == "system"
    assert prompt.messages[-1] == ChatMessage("user", "latest question")
    assert_pairs_intact(prompt.messages)
    assert (prompt.tokens > budget) == (prompt.incomplete_reason == "max_prompt_tokens")


def test_prompt_over_max_prompt_tokens_is_reported_for_incomplete() -> None:
    backend = ScriptedBackend()
    history: list[HistoryItem] = [ThreadMessage("user", words(80, "w"))]
    prompt = build_prompt(backend, instructions="sys", history=history, max_prompt_tokens=20)
    assert prompt.incomplete_reason == "max_prompt_tokens"
    assert prompt.messages[-1] == ChatMessage("user", words(80, "w"))


def test_last_messages_reports_max_prompt_tokens_too() -> None:
    history = conversation(3)
    prompt = build_prompt(
        ScriptedBackend(),
        instructions=None,
        history=history,
        truncation=Truncation("last_messages", 3),
        max_prompt_tokens=10,
    )
    assert prompt.incomplete_reason == "max_prompt_tokens"


def test_current_runs_tool_steps_after_the_newest_user_message_are_kept() -> None:
    backend = ScriptedBackend()
    history = conversation(4)
    history += [ThreadMessage("user", "now"), ToolStep((WEATHER,), ("sunny",))]
    prompt = build_prompt(backend, instructions=None, history=history, max_prompt_tokens=40)
    assert [m.role for m in prompt.messages] == ["user", "assistant", "tool"]
    assert prompt.incomplete_reason is None
