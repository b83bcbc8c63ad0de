"""Records: tool calls, usage, ids, transcripts."""

from __future__ import annotations

from assistant_kit.testing.records import (
    ToolCallRecord,
    TurnRecord,
    Usage,
    call_signature,
    make_test_id,
    parse_arguments,
    render_transcript,
)


def test_function_call_parses_its_arguments():
    call = ToolCallRecord.function("c1", "get_weather", '{"city": "Paris"}')
    assert call.arguments == {"city": "Paris"}
    assert call.arguments_ok
    assert call.kind == "function"
    assert call.mock is None
    assert call.signature() == 'get_weather({"city": "Paris"})'
    answered = call.with_output('{"temp": 21}', mock="test:get_weather.returns")
    assert answered.mock is not None and answered.output == '{"temp": 21}' and not answered.is_error


def test_unparsable_and_empty_arguments():
    bad = ToolCallRecord.function("c", "f", "{oops")
    assert (bad.arguments, bad.arguments_ok) == (None, False)
    assert bad.signature() == "f({oops)"
    assert parse_arguments("  ") == ({}, True)


def test_builtin_call():
    call = ToolCallRecord.builtin("s1", "code_interpreter", {"input": "print(1)"}, output="1")
    assert (call.kind, call.type, call.name) == ("builtin", "code_interpreter", "code_interpreter")
    assert call.raw_arguments == '{"input": "print(1)"}'


def test_usage_adds_up():
    total = Usage(10, 2) + Usage(5, 1)
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (15, 3, 18)


def test_ids_and_signatures():
    assert make_test_id("billing-bot", "looks up an order") == "billing-bot::looks up an order"
    assert call_signature("f", {"é": "ü"}) == 'f({"é": "ü"})'


def test_transcript_lists_calls_between_user_and_assistant():
    turn = TurnRecord(
        index=0,
        user="weather?",
        reply="21 degrees",
        tool_calls=(ToolCallRecord.function("c", "get_weather", "{}", output="21"),),
    )
    assert render_transcript([turn]) == (
        "User: weather?\nTool call: get_weather({}) -> 21\nAssistant: 21 degrees"
    )
    assert turn.calls_named("get_weather") == turn.tool_calls
