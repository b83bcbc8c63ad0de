"""Tool calls as JSON for local models: schema, transcript rendering, streaming scanner."""

from __future__ import annotations

import json

import pytest

from assistant_kit.errors import ModelError
from assistant_kit.server.models.base import ChatMessage, ToolCall, ToolCallDelta
from assistant_kit.server.models.llama_tools import (
    CallScanner,
    chat_messages,
    tool_call_schema,
    with_tool_instructions,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ORDER = {
    "type": "function",
    "function": {
        "name": "get_order",
        "parameters": {
            "type": "object",
            "properties": {"id": {"type": "integer"}},
            "required": ["id"],
        },
    },
}


def test_tool_call_schema_offers_every_tool_or_only_the_named_one() -> None:
    both = tool_call_schema([WEATHER, ORDER], "required")
    named = tool_call_schema(
        [WEATHER, ORDER], {"type": "function", "function": {"name": "get_order"}}
    )

    assert [a["properties"]["name"] for a in both["anyOf"]] == [
        {"const": "get_weather"},
        {"const": "get_order"},
    ]
    assert named["properties"]["name"] == {"const": "get_order"}
    assert named["properties"]["arguments"] == ORDER["function"]["parameters"]
    assert named["required"] == ["name", "arguments"]


def test_tool_call_schema_rejects_a_choice_that_is_not_offered() -> None:
    with pytest.raises(ModelError, match="get_stock"):
        tool_call_schema([WEATHER], {"type": "function", "function": {"name": "get_stock"}})


def test_call_scanner_streams_the_arguments_and_drops_what_follows() -> None:
    text = '{"name": "get_weather", "arguments": {"city": "Pa}ris \\"x\\"", "n": [1, {"a": 2}]} }'
    scanner = CallScanner(call_id="call_1")

    deltas = [d for i in range(0, len(text), 3) for d in scanner.feed(text[i : i + 3])]

    assert scanner.done
    assert deltas[0] == ToolCallDelta(index=0, name="get_weather", id="call_1")
    arguments = "".join(d.arguments for d in deltas[1:])
    assert json.loads(arguments) == {"city": 'Pa}ris "x"', "n": [1, {"a": 2}]}
    assert len(deltas) > 3


def test_transcript_with_tool_calls_renders_for_a_template_without_tools() -> None:
    messages = [
        ChatMessage("user", "Where is order 42?"),
        ChatMessage("assistant", tool_calls=(ToolCall("call_1", "get_order", '{"id": 42}'),)),
        ChatMessage("tool", '{"status": "shipped"}', tool_call_id="call_1"),
    ]

    chat = with_tool_instructions(chat_messages(messages, native_tools=False), [ORDER])

    assert chat[0]["role"] == "system" and '"get_order"' in chat[0]["content"]
    assert chat[2] == {
        "role": "assistant",
        "content": '{"name": "get_order", "arguments": {"id": 42}}',
    }
    assert chat[3] == {"role": "user", "content": 'Result of get_order: {"status": "shipped"}'}


def test_call_scanner_is_not_done_while_the_arguments_are_open() -> None:
    scanner = CallScanner(call_id="call_2")

    deltas = list(scanner.feed('{"name": "get_order", "arguments": {"id": 4'))

    assert [d.name for d in deltas] == ["get_order", None]
    assert deltas[1].arguments == '{"id": 4'
    assert not scanner.done
