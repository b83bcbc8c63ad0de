from __future__ import annotations

import pytest

from assistant_kit.api.base import RemoteAssistant
from assistant_kit.sync.diff import (
    SECRET,
    FieldChange,
    actual_state,
    desired_state,
    field_changes,
    marks_of,
    normalize_tool,
    normalize_tools,
    state_digest,
)

from .specs import WEATHER_TOOL, make_spec


def remote(**fields: object) -> RemoteAssistant:
    base: dict[str, object] = {"id": "asst_1", "created_at": 0, "model": "qwen-max"}
    base.update(fields)
    return RemoteAssistant(**base)  # type: ignore[arg-type]


def test_tool_order_key_order_and_aliases_do_not_matter() -> None:
    a = [
        {"type": "search"},
        {
            "type": "function",
            "function": {
                "parameters": {"properties": {}, "type": "object"},
                "name": "b",
                "description": "B",
            },
        },
        {"type": "function", "function": {"name": "a"}},
        {"type": "wanx"},
    ]
    b = [
        {"type": "text_to_image"},
        {"type": "function", "function": {"name": "a", "strict": False, "parameters": None}},
        {"type": "function", "function": {"description": "B", "name": "b"}},
        {"type": "quark_search"},
    ]
    assert normalize_tools(a) == normalize_tools(b)
    assert [t["type"] for t in normalize_tools(a)] == [
        "function",
        "function",
        "quark_search",
        "text_to_image",
    ]


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param(
            {"type": "object", "properties": {"x": {"type": "string"}}, "required": []},
            {"properties": {"x": {"type": "string"}}, "type": "object"},
            id="empty-required",
        ),
        pytest.param({"type": "object"}, None, id="bare-object"),
        pytest.param({}, None, id="empty-mapping"),
    ],
)
def test_function_parameter_defaults_are_dropped(left: object, right: object) -> None:
    one = {"type": "function", "function": {"name": "f", "parameters": left}}
    two = {"type": "function", "function": {"name": "f", "parameters": right}}
    assert normalize_tool(one) == normalize_tool(two)


def test_a_real_parameter_change_is_still_a_change() -> None:
    one = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
    }
    two = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
    }
    assert normalize_tool(one) != normalize_tool(two)


def test_plugin_tokens_are_masked_and_auth_type_defaults() -> None:
    tool = {"type": "weather", "auth": {"user_token": "s3cr3t"}}
    assert normalize_tool(tool) == {
        "type": "weather",
        "auth": {"type": "user_http", "user_token": SECRET},
    }
    assert "s3cr3t" not in str(normalize_tool(tool))


def test_spec_and_the_remote_it_became_have_one_digest(dialect: str) -> None:
    spec = make_spec(
        "bot",
        display_name="Bot",
        instructions="Be brief.",
        tools=["code_interpreter", WEATHER_TOOL],
        settings={"temperature": 0.2, "top_p": 0.5},
        metadata={"team": "a"},
    )
    desired = desired_state(spec, dialect)  # type: ignore[arg-type]
    body = spec.to_payload(dialect)  # type: ignore[arg-type]
    same = remote(
        name=body["name"],
        instructions=body["instructions"],
        tools=tuple(reversed(body["tools"])),
        metadata={**body["metadata"], **marks_of("bot", desired)},
        temperature=0.2,
        top_p=0.5,
        description="",
    )
    actual = actual_state(same, dialect)  # type: ignore[arg-type]
    assert actual == desired
    assert state_digest(actual) == state_digest(desired)
    assert field_changes(actual, desired) == ()


def test_openai_defaults_read_as_unset() -> None:
    spec = make_spec("bot")
    shown = remote(name="bot", temperature=1.0, top_p=1.0)
    assert field_changes(actual_state(shown, "openai"), desired_state(spec, "openai")) == ()
    # DashScope has no such defaults: a set temperature is a difference there
    changes = field_changes(actual_state(shown, "dashscope"), desired_state(spec, "dashscope"))
    assert [c.field for c in changes] == ["temperature", "top_p"]


def test_field_changes_lists_fields_then_metadata_then_marks() -> None:
    before = actual_state(remote(name="A", metadata={"team": "a", "old": "x"}), "dashscope")
    after = desired_state(make_spec("a", display_name="B", metadata={"team": "b"}), "dashscope")
    changes = field_changes(
        before, after, before_marks={"kit_name": "a"}, after_marks=marks_of("a", after)
    )
    assert [c.field for c in changes] == [
        "name",
        "metadata.old",
        "metadata.team",
        "metadata.kit_digest",
    ]
    assert changes[0] == FieldChange("name", "A", "B")
    assert changes[-1].is_mark and not changes[0].is_mark
