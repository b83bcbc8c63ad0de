from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_kit.errors import ConfigError, ModelError
from assistant_kit.server.models.base import (
    ChatMessage,
    Finish,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from assistant_kit.server.models.scripted import Rule, ScriptedBackend, ScriptedCall

pytestmark = pytest.mark.anyio

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}
ORDER = {"type": "function", "function": {"name": "get_order", "parameters": {"type": "object"}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ask(text: str, **kwargs: object) -> ModelRequest:
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", text))
    return ModelRequest(model="demo", messages=messages, **kwargs)  # type: ignore[arg-type]


async def collect(backend: ScriptedBackend, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in backend.stream(request)]


def reply_text(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def tool_calls(events: list[ModelEvent]) -> list[ToolCall]:
    calls: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            if e.name is not None:
                assert e.index not in calls, "only the first fragment carries the name"
                calls[e.index] = [e.id or "", e.name, ""]
            else:
                assert e.id is None
            calls[e.index][2] += e.arguments
    return [ToolCall(*calls[i]) for i in sorted(calls)]


SCRIPT = """\
default: "Sorry, I only know the weather."
rules:
  - user: "(?i)weather in (?P<city>\\\\w+) and (?P<other>\\\\w+)"
    tool_calls:
      - {name: get_weather, arguments: {city: "{city}"}}
      - {name: get_weather, arguments: {city: "{other}"}}
  - user: "(?i)weather in (?P<city>\\\\w+)"
    tool_calls:
      - {name: get_weather, arguments: {city: "{city}", units: metric}}
  - user: "(?i)order (\\\\d+)"
    tool_calls:
      - {name: get_order, arguments: '{"id": {1}}'}
  - after_tool: get_weather
    reply: "The weather is {output} ({name[0]})."
  - after_tool: true
    reply: "Tool said {output[0]}."
  - user: "(?i)^(hi|hello)"
    reply: "Hello! You said {{user}}: {user}"
"""


@pytest.fixture
def backend(tmp_path: Path) -> ScriptedBackend:
    path = tmp_path / "demo.yaml"
    path.write_text(SCRIPT, encoding="utf-8")
    return ScriptedBackend.from_file(path)


async def test_regex_on_last_user_text_picks_a_reply(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("hello there"))
    assert reply_text(events) == "Hello! You said {user}: hello there"
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"


async def test_long_text_streams_in_several_fragments(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("hi, please tell me a long story about the weather"))
    fragments = [e for e in events if isinstance(e, TextDelta)]
    assert len(fragments) >= 3
    assert all(f.text for f in fragments)


async def test_no_matching_rule_uses_the_default(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("What is love?"))
    assert reply_text(events) == "Sorry, I only know the weather."


async def test_tool_call_with_arguments_from_regex_groups(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("What's the weather in Paris?", tools=(WEATHER,)))
    [call] = tool_calls(events)
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris", "units": "metric"}
    assert call.id.startswith("call_")
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    assert reply_text(events) == ""


async def test_tool_call_arguments_arrive_in_several_fragments(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("weather in Paris", tools=(WEATHER,)))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].name == "get_weather" and deltas[0].id and deltas[0].arguments == ""
    assert len([d for d in deltas[1:] if d.arguments]) >= 2
    assert all(d.name is None and d.id is None for d in deltas[1:])


async def test_parallel_tool_calls_get_distinct_ids(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("weather in Paris and London", tools=(WEATHER,)))
    calls = tool_calls(events)
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Paris", "London"]
    assert len({c.id for c in calls}) == 2


async def test_parallel_tool_calls_false_keeps_the_first_call(backend: ScriptedBackend) -> None:
    request = ask("weather in Paris and London", tools=(WEATHER,), parallel_tool_calls=False)
    calls = tool_calls(await collect(backend, request))
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Paris"]


async def test_json_text_arguments_keep_numbers(backend: ScriptedBackend) -> None:
    calls = tool_calls(await collect(backend, ask("where is order 42", tools=(ORDER,))))
    assert json.loads(calls[0].arguments) == {"id": 42}


async def test_after_tool_outputs_the_reply_uses_them(backend: ScriptedBackend) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = (
        ChatMessage("user", "weather in Paris"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "sunny, 21C", tool_call_id="call_1"),
    )
    request = ModelRequest(model="demo", messages=messages, tools=(WEATHER,))
    events = await collect(backend, request)
    assert reply_text(events) == "The weather is sunny, 21C (get_weather)."
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"


async def test_after_tool_rule_for_other_tools(backend: ScriptedBackend) -> None:
    calls = (ToolCall("a", "get_order", "{}"), ToolCall("b", "get_order", "{}"))
    messages = (
        ChatMessage("user", "order 1"),
        ChatMessage("assistant", "", tool_calls=calls),
        ChatMessage("tool", "shipped", tool_call_id="a"),
        ChatMessage("tool", "lost", tool_call_id="b"),
    )
    events = await collect(backend, ModelRequest(model="demo", messages=messages))
    assert reply_text(events) == "Tool said shipped."


async def test_tool_choice_none_never_calls_tools(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("weather in Paris", tools=(WEATHER,), tool_choice="none"))
    assert tool_calls(events) == []
    assert reply_text(events) == "Sorry, I only know the weather."


async def test_rules_calling_tools_not_offered_are_skipped(backend: ScriptedBackend) -> None:
    events = await collect(backend, ask("weather in Paris"))
    assert tool_calls(events) == []


async def test_required_tool_choice_calls_a_tool_even_without_a_rule(
    backend: ScriptedBackend,
) -> None:
    events = await collect(backend, ask("hello", tools=(ORDER,), tool_choice="required"))
    assert [(c.name, c.arguments) for c in tool_calls(events)] == [("get_order", "{}")]


async def test_named_tool_choice_keeps_only_that_tool(backend: ScriptedBackend) -> None:
    choice = {"type": "function", "function": {"name": "get_order"}}
    events = await collect(
        backend, ask("weather in Paris", tools=(WEATHER, ORDER), tool_choice=choice)
    )
    assert [c.name for c in tool_calls(events)] == ["get_order"]


async def test_max_tokens_truncates_and_finishes_with_length() -> None:
    backend = ScriptedBackend(default="one two three four five six")
    events = await collect(backend, ask("anything", max_tokens=3))
    assert reply_text(events) == "one two three"
    assert events[-1] == Finish("length", Usage(backend.count_tokens(ask("x").messages), 3))


async def test_max_tokens_truncates_tool_call_arguments() -> None:
    backend = ScriptedBackend(
        [Rule(tool_calls=(ScriptedCall("get_weather", {"city": "Paris", "units": "metric"}),))]
    )
    events = await collect(backend, ask("x", tools=(WEATHER,), max_tokens=4))
    assert isinstance(events[-1], Finish) and events[-1].reason == "length"
    assert events[-1].usage.completion_tokens <= 4


async def test_usage_counts_prompt_and_completion_tokens() -> None:
    backend = ScriptedBackend(default="Hello, world!")
    request = ask("hi there")
    events = await collect(backend, request)
    assert events[-1] == Finish("stop", Usage(backend.count_tokens(request.messages), 4))
    assert backend.count_tokens(request.messages) == (4 + 3) + (4 + 2)  # "Be brief." is 3 tokens


async def test_python_rules_and_mappings_both_work() -> None:
    backend = ScriptedBackend(
        [
            {
                "user": "(?i)weather",
                "tool_calls": [{"name": "get_weather", "arguments": {"q": "{0}"}}],
            },
            Rule(after_tool=True, reply="It is {output}."),
        ]
    )
    calls = tool_calls(await collect(backend, ask("Weather?", tools=(WEATHER,))))
    assert json.loads(calls[0].arguments) == {"q": "Weather"}
    messages = (
        ChatMessage("user", "Weather?"),
        ChatMessage("assistant", "", tool_calls=calls[:1]),
        ChatMessage("tool", "cold", tool_call_id=calls[0].id),
    )
    events = await collect(backend, ModelRequest(model="m", messages=messages))
    assert reply_text(events) == "It is cold."


async def test_builtin_defaults_answer_ok_or_echo_outputs() -> None:
    backend = ScriptedBackend()
    assert reply_text(await collect(backend, ask("hi"))) == "OK."
    messages = (
        ChatMessage("user", "x"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c", "f", "{}"),)),
        ChatMessage("tool", "42", tool_call_id="c"),
    )
    events = await collect(backend, ModelRequest(model="m", messages=messages))
    assert reply_text(events) == "42"


async def test_user_rules_do_not_fire_again_after_tool_outputs() -> None:
    backend = ScriptedBackend(
        [Rule(user="weather", tool_calls=(ScriptedCall("get_weather"),))], default="done"
    )
    messages = (
        ChatMessage("user", "weather"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c", "get_weather", "{}"),)),
        ChatMessage("tool", "sun", tool_call_id="c"),
    )
    request = ModelRequest(model="m", messages=messages, tools=(WEATHER,))
    assert reply_text(await collect(backend, request)) == "done"


async def test_delay_ms_waits_before_answering() -> None:
    import time

    backend = ScriptedBackend(default="hi", delay_ms=50)
    started = time.perf_counter()
    await collect(backend, ask("x"))
    assert time.perf_counter() - started >= 0.045


def test_kit_yaml_delay_overrides_the_script(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("delay_ms: 5\nrules: []\n", encoding="utf-8")
    assert ScriptedBackend.from_file(path).delay_ms == 5
    assert ScriptedBackend.from_file(path, delay_ms=0).delay_ms == 0


def test_a_bare_list_of_rules_is_a_script(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("- {user: hi, reply: hello}\n", encoding="utf-8")
    assert ScriptedBackend.from_file(path).default is None


@pytest.mark.parametrize(
    ("script", "message"),
    [
        pytest.param("rules:\n  - {user: hi}\n", "rule 1: give exactly one of", id="no-action"),
        pytest.param(
            "rules:\n  - {user: hi, reply: a}\n  - {user: x, reply: '{nope}'}\n",
            ":3: rule 2: unknown placeholder {nope}",
            id="unknown-placeholder",
        ),
        pytest.param("rules:\n  - {user: '(', reply: a}\n", "bad `user` regex", id="bad-regex"),
        pytest.param("rules:\n  - {usr: hi, reply: a}\n", "unknown key(s) usr", id="typo"),
        pytest.param("rulez: []\n", "unknown key(s) rulez", id="top-level-typo"),
        pytest.param("rules: [\n", "not valid YAML", id="bad-yaml"),
        pytest.param(
            "rules:\n  - {user: hi, tool_calls: [{name: f, arguments: 'nope'}]}\n",
            "`arguments` text is not JSON",
            id="bad-arguments",
        ),
        pytest.param("rules:\n  - {reply: '{user[1]}'}\n", "take an index", id="bad-index"),
        pytest.param(
            "rules:\n  - {reply: a, cut_after: -1}\n", "`cut_after` must be", id="bad-cut"
        ),
    ],
)
def test_bad_scripts_are_config_errors_naming_the_place(
    tmp_path: Path, script: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(script, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        ScriptedBackend.from_file(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_script_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the model script"):
        ScriptedBackend.from_file(tmp_path / "missing.yaml")


async def test_arguments_template_that_renders_bad_json_is_a_model_error() -> None:
    backend = ScriptedBackend([Rule(user="(.*)", tool_calls=(ScriptedCall("f", '{"q": {1}}'),))])
    f = {"type": "function", "function": {"name": "f"}}
    with pytest.raises(ModelError, match="not JSON"):
        await collect(backend, ask("not a number", tools=(f,)))


def readme_script() -> str:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Scripted model scripts", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


async def test_the_readme_script_works_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(readme_script(), encoding="utf-8")
    backend = ScriptedBackend.from_file(path)
    order = {"type": "function", "function": {"name": "get_order"}}
    calls = tool_calls(await collect(backend, ask("weather in Rome and Oslo", tools=(WEATHER,))))
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Rome"}, {"city": "Oslo"}]
    calls = tool_calls(await collect(backend, ask("order 7?", tools=(order,))))
    assert json.loads(calls[0].arguments) == {"id": 7}
    messages = (
        ChatMessage("user", "weather in Rome"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c", "get_weather", "{}"),)),
        ChatMessage("tool", "sunny", tool_call_id="c"),
    )
    events = await collect(backend, ModelRequest(model="demo", messages=messages))
    assert reply_text(events) == "The weather is sunny."
    assert reply_text(await collect(backend, ask("Hello"))).startswith("Hello! Ask me")
    assert reply_text(await collect(backend, ask("poem?"))) == backend.default


async def test_cut_after_stops_the_reply_without_a_finish() -> None:
    backend = ScriptedBackend(
        [{"user": "story", "reply": "Once upon a time there was", "cut_after": 9}]
    )
    events = await collect(backend, ask("tell a story"))
    assert reply_text(events) == "Once upon"
    assert not any(isinstance(e, Finish) for e in events)


async def test_cut_after_stops_tool_call_arguments_without_a_finish() -> None:
    call = ScriptedCall("get_weather", {"city": "Paris"})
    backend = ScriptedBackend([Rule(user="weather", tool_calls=(call,), cut_after=5)])
    events = await collect(backend, ask("weather?", tools=(WEATHER,)))
    [made] = tool_calls(events)
    assert made.name == "get_weather" and made.arguments == '{"cit'
    assert not any(isinstance(e, Finish) for e in events)
