"""AssistantSpec: the exact bodies per dialect, aliases, digests, and the test model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from assistant_kit.errors import ConfigError
from assistant_kit.spec.model import (
    AssistantSpec,
    Expectation,
    MockOutcome,
    MockSpec,
    Settings,
    TestCase,
    ToolSpec,
    canonical_json,
)

ART_MAESTRO: dict[str, Any] = {
    "name": "art-maestro",
    "display_name": "Art Maestro",
    "model": "qwen-max",
    "description": "AI assistant for painting and art knowledge",
    "instructions": "Provide information on painting techniques.",
    "tools": ["search", {"type": "wanx"}],
}


def spec(**changes: Any) -> AssistantSpec:
    data = {**ART_MAESTRO, **changes}
    return AssistantSpec.from_data(data, instructions=data.get("instructions"))


def test_dashscope_body_is_what_its_sdk_sends_on_create() -> None:
    body = spec().to_payload("dashscope")
    assert body == {
        "model": "qwen-max",
        "name": "Art Maestro",
        "description": "AI assistant for painting and art knowledge",
        "instructions": "Provide information on painting techniques.",
        "tools": [{"type": "quark_search"}, {"type": "text_to_image"}],
        "file_ids": [],
        "metadata": None,
    }
    assert list(body) == [
        "model",
        "name",
        "description",
        "instructions",
        "tools",
        "file_ids",
        "metadata",
    ]


def test_openai_body_has_no_file_ids() -> None:
    assert spec().to_payload("openai") == {
        "model": "qwen-max",
        "name": "Art Maestro",
        "description": "AI assistant for painting and art knowledge",
        "instructions": "Provide information on painting techniques.",
        "tools": [{"type": "quark_search"}, {"type": "text_to_image"}],
        "metadata": {},
    }


def test_name_defaults_to_the_slug_and_unset_fields_are_left_out() -> None:
    body = AssistantSpec.from_data({"name": "bare", "model": "m"}).to_payload("openai")
    assert body == {"model": "m", "name": "bare", "tools": [], "metadata": {}}


def test_function_tools_are_nested_in_both_dialects() -> None:
    tool = {
        "type": "function",
        "name": "get_order",
        "description": "Look an order up",
        "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
    }
    for dialect in ("dashscope", "openai"):
        body = spec(tools=[tool, {"type": "function", "name": "ping"}]).to_payload(dialect)
        assert body["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_order",
                    "description": "Look an order up",
                    "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
                },
            },
            {"type": "function", "function": {"name": "ping"}},
        ]


def test_sampling_fields_go_top_level_on_dashscope_and_only_two_on_openai() -> None:
    settings = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_tokens": 512}
    dashscope = spec(settings=settings).to_payload("dashscope")
    assert {k: dashscope[k] for k in settings} == settings
    assert list(dashscope)[-4:] == ["top_p", "top_k", "temperature", "max_tokens"]
    openai = spec(settings=settings).to_payload("openai")
    assert "top_k" not in openai and "max_tokens" not in openai
    assert (openai["temperature"], openai["top_p"]) == (0.7, 0.8)


def test_plugins_carry_their_token_only_when_an_environment_is_given() -> None:
    s = spec(
        tools=[
            {"type": "plugin", "id": "weather", "auth": {"env": "WEATHER_TOKEN"}},
            {"type": "plugin", "id": "calc"},
        ]
    )
    assert s.to_payload("dashscope")["tools"] == [
        {"type": "weather", "auth": {"type": "user_http", "user_token": "${WEATHER_TOKEN}"}},
        {"type": "calc"},
    ]
    real = s.to_payload("dashscope", environ={"WEATHER_TOKEN": "t0k"})
    assert real["tools"][0]["auth"]["user_token"] == "t0k"
    with pytest.raises(ConfigError, match="WEATHER_TOKEN"):
        s.to_payload("dashscope", environ={})


def test_metadata_is_copied_into_the_body() -> None:
    s = spec(metadata={"team": "art"})
    body = s.to_payload("dashscope")
    body["metadata"]["x"] = "y"
    assert s.metadata == {"team": "art"}


def test_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown dialect"):
        spec().to_payload("azure")  # type: ignore[arg-type]


def test_digest_is_sha256_of_the_canonical_body() -> None:
    s = spec()
    expected = hashlib.sha256(canonical_json(s.to_payload("dashscope")).encode()).hexdigest()
    assert s.digest("dashscope") == expected == s.digest()
    assert s.digest("openai") != s.digest("dashscope")


def test_digest_ignores_key_order_but_not_content() -> None:
    params_a = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    params_b = {"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "type": "object"}
    tool = {"type": "function", "name": "f"}
    a = spec(tools=[{**tool, "parameters": params_a}])
    b = spec(tools=[{**tool, "parameters": params_b}])
    assert a.digest() == b.digest()
    assert replace(a, model="qwen-plus").digest() != a.digest()
    assert replace(a, settings=Settings(temperature=0.1)).digest() != a.digest()


def test_canonical_json_is_compact_sorted_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": ["é"]}) == '{"a":["é"],"b":1}'
    assert json.loads(canonical_json({"x": 1})) == {"x": 1}


def test_tool_keys_and_function_lookup() -> None:
    s = spec(
        tools=["code_interpreter", {"type": "function", "name": "f"}, {"type": "plugin", "id": "p"}]
    )
    assert [t.key for t in s.tools] == ["code_interpreter", "f", "p"]
    assert [t.name for t in s.tools if t.type == "function"] == ["f"]
    assert ToolSpec.from_data("wanx") == ToolSpec(type="text_to_image")


def test_tests_become_typed_cases_with_mocks_and_expectations() -> None:
    data = {
        "name": "looks up",
        "tags": ["smoke"],
        "repeat": 3,
        "min_pass": 2,
        "timeout": 30,
        "mocks": {
            "get_order": {"returns": {"status": "shipped"}},
            "get_rate": {"sequence": [1.0, 1.1]},
            "charge": {"error": "card declined"},
            "get_city": {
                "when": [{"args": {"city": "Paris"}, "returns": {"temp": 21}}],
                "default": {"error": "unknown"},
            },
        },
        "turns": [
            {
                "user": "Where is 42?",
                "mocks": {"get_order": {"returns": "lost"}},
                "expect": [
                    {"contains": "shipped"},
                    {"not": {"icontains": "sorry"}},
                    {"not": {"not": {"regex": "x"}}},
                ],
            },
            {"user": "Thanks"},
        ],
    }
    case = TestCase.from_data(data, file="a.yaml", line_of=lambda path: len(path))
    assert case.min_pass == 2
    assert case.tags == ("smoke",)
    assert case.mocks["get_rate"] == MockSpec("get_rate", "sequence", sequence=(1.0, 1.1))
    assert case.mocks["charge"].kind == "error"
    city = case.mocks["get_city"]
    assert city.when[0].args == {"city": "Paris"}
    assert city.when[0].outcome == MockOutcome(returns={"temp": 21})
    assert city.default == MockOutcome(error="unknown")
    first = case.turns[0]
    assert [(e.kind, e.value, e.negate) for e in first.expect] == [
        ("contains", "shipped", False),
        ("icontains", "sorry", True),
        ("regex", "x", False),
    ]
    assert first.mocks["get_order"].returns == "lost"
    assert case.mocks["get_order"].returns == {"status": "shipped"} and not case.turns[1].mocks
    assert case.turns[1].expect == ()
    bare = TestCase.from_data({"name": "t", "turns": [{"user": "hi"}]})
    assert (bare.repeat, bare.min_pass) == (1, None)


def test_expectation_double_negation_cancels() -> None:
    assert Expectation.from_data({"not": {"not": {"equals": "a"}}}) == Expectation("equals", "a")


def test_text_fields_left_out_stay_out_and_null_clears_them() -> None:
    left_out = AssistantSpec.from_data({"name": "a", "model": "m"}).to_payload("dashscope")
    assert "description" not in left_out and "instructions" not in left_out
    data = {"name": "a", "model": "m", "description": None, "instructions": None}
    cleared = AssistantSpec.from_data(data).to_payload("dashscope")
    assert (cleared["description"], cleared["instructions"]) == ("", "")


def test_dashscope_body_matches_what_dashscope_2_0_2_put_on_the_wire() -> None:
    # captured from dashscope 2.0.2's Assistants.create on a loopback server: sampling fields in
    # its order (top_p before temperature), metadata sent when given
    body = AssistantSpec.from_data(
        {
            "name": "bare",
            "model": "m",
            "metadata": {"team": "art"},
            "settings": {"temperature": 0.7, "top_p": 0.8},
        }
    ).to_payload("dashscope")
    wire = (
        '{"model": "m", "name": "bare", "tools": [], "file_ids": [], "metadata": {"team": "art"}, '
        '"top_p": 0.8, "temperature": 0.7}'
    )
    assert json.dumps(body) == wire
