"""JSON Schema validation: positions, friendly messages, and the checks a schema cannot make."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from assistant_kit.spec.load import parse_yaml
from assistant_kit.spec.validate import (
    check_assistant,
    check_kit,
    load_schema,
    schema_validator,
)

from .conftest import FIXTURES


def issues(source: str) -> list[str]:
    doc = parse_yaml(textwrap.dedent(source), "a.yaml")
    return [str(i) for i in sorted(check_assistant(doc), key=lambda i: (i.line, i.col, i.message))]


def test_the_full_fixture_using_every_feature_is_valid() -> None:
    doc = parse_yaml((FIXTURES / "good" / "full.yaml").read_text(), "full.yaml")
    assert check_assistant(doc) == []


def test_the_minimal_spec_is_name_and_model() -> None:
    assert issues("name: a\nmodel: m\n") == []


@pytest.mark.parametrize(
    "source, expected",
    [
        pytest.param(
            "name: a\ninstructions: hi\n", "a.yaml:1:1: missing required key `model`", id="no-model"
        ),
        pytest.param(
            "name: a\nmodel: m\ninstrucions: hi\n",
            "a.yaml:3:1: unknown key `instrucions`; did you mean `instructions`?",
            id="unknown-key",
        ),
        pytest.param(
            "name: a\nmodel: m\ntools: code_interpreter\n",
            'a.yaml:3:8: `tools`: must be a list, not the string "code_interpreter"',
            id="wrong-type",
        ),
        pytest.param(
            "name: Art Maestro\nmodel: m\n",
            'a.yaml:1:7: `name`: "Art Maestro" is not valid: use 1-64 lowercase letters, digits, '
            "`-` or `_`, starting and ending with a letter or digit",
            id="name-not-a-slug",
        ),
        pytest.param(
            "name: a\nmodel: m\nsettings: {temperature: 2.5}\n",
            "a.yaml:3:25: `settings.temperature`: 2.5 is too large: must be at most 2",
            id="temperature",
        ),
        pytest.param(
            "name: a\nmodel: m\nsettings: {top_p: 0}\n",
            "a.yaml:3:19: `settings.top_p`: 0 is too small: must be greater than 0",
            id="top-p",
        ),
        pytest.param(
            "name: a\nmodel: m\nsettings: {top_k: 1.5}\n",
            "a.yaml:3:19: `settings.top_k`: must be an integer, not the number 1.5",
            id="top-k",
        ),
        pytest.param(
            "name: a\nmodel: m\nsettings: {max_tokens: 0}\n",
            "a.yaml:3:24: `settings.max_tokens`: 0 is too small: must be greater than 0",
            id="max-tokens",
        ),
        pytest.param(
            "name: a\nmodel: m\nsettings: {temprature: 1}\n",
            "a.yaml:3:12: `settings`: unknown key `temprature`; did you mean `temperature`?",
            id="unknown-setting",
        ),
        pytest.param(
            "name: a\nmodel: m\ndisplay_name: " + "x" * 257 + "\n",
            "a.yaml:3:15: `display_name`: too long: 257 characters (at most 256)",
            id="display-name-length",
        ),
        pytest.param(
            "name: a\nmodel: m\ndescription: " + "x" * 513 + "\n",
            "a.yaml:3:14: `description`: too long: 513 characters (at most 512)",
            id="description-length",
        ),
        pytest.param(
            "name: a\nmodel: m\ntools:\n  - type: function\n    name: get weather\n",
            'a.yaml:5:11: `tools[0].name`: "get weather" is not valid: use 1-64 letters, digits, '
            "`_` or `-`",
            id="function-name",
        ),
        pytest.param(
            "name: a\nmodel: m\ntools: [serch]\n",
            'a.yaml:3:9: `tools[0]`: "serch" is not one of: code_interpreter, quark_search, '
            "search, "
            "text_to_image, wanx; did you mean `search`?",
            id="unknown-shorthand",
        ),
        pytest.param(
            "name: a\nmodel: m\ntools: [{type: plugn}]\n",
            'a.yaml:3:16: `tools[0].type`: "plugn" is not one of: function, code_interpreter, '
            "quark_search, search, text_to_image, wanx, plugin; did you mean `plugin`?",
            id="unknown-tool-type",
        ),
        pytest.param(
            "name: a\nmodel: m\ntools: [{type: code_interpreter, timeout: 3}]\n",
            "a.yaml:3:34: `tools[0]`: unknown key `timeout`; expected one of: type",
            id="builtin-takes-no-options",
        ),
        pytest.param(
            "name: a\nmodel: m\ntools: [{type: function}]\n",
            "a.yaml:3:9: `tools[0]`: missing required key `name`",
            id="function-without-name",
        ),
        pytest.param(
            "name: a\nmodel: m\ntools: [{type: plugin, id: w, auth: {token: x}}]\n",
            "a.yaml:3:37: `tools[0].auth`: missing required key `env`",
            id="plugin-auth-needs-env",
        ),
    ],
)
def test_schema_errors_point_at_the_offending_node(source: str, expected: str) -> None:
    assert expected in issues(source)


def test_function_parameters_must_be_a_json_schema() -> None:
    found = issues(
        """\
        name: a
        model: m
        tools:
          - type: function
            name: f
            parameters:
              type: object
              properties:
                city: {type: strng}
              required: city
        """
    )
    assert found == [
        'a.yaml:9:22: function `f` parameters are not a valid JSON Schema: "strng" is not a JSON '
        "Schema type (use one of: array, boolean, integer, null, number, object, string)",
        "a.yaml:10:17: function `f` parameters are not a valid JSON Schema: 'city' is not of type "
        "'array'",
    ]


def test_duplicate_function_names_are_refused() -> None:
    found = issues(
        "name: a\nmodel: m\ntools:\n  - {type: function, name: f}\n  - {type: function, name: f}\n"
    )
    assert found == ["a.yaml:5:28: function `f` is declared twice (first as `tools[0]`)"]


def test_metadata_allows_thirteen_string_pairs() -> None:
    pairs = "".join(f"  k{i}: v\n" for i in range(13))
    assert issues(f"name: a\nmodel: m\nmetadata:\n{pairs}") == []
    found = issues(f"name: a\nmodel: m\nmetadata:\n{pairs}  k13: v\n")
    assert found == [
        "a.yaml:4:3: `metadata`: too many metadata pairs: 14 (at most 13; the API allows 16 and "
        "the kit keeps 3 for its own marks)"
    ]


@pytest.mark.parametrize(
    "line, expected",
    [
        pytest.param("kit_digest: x", "`metadata`: key `kit_digest` is reserved", id="reserved"),
        pytest.param(
            "k" * 65 + ": x", "`metadata`: key `kkkkkkkkkkkkkkkkkkkk...` is too long: 65", id="key"
        ),
        pytest.param(
            "k: " + "v" * 513, "`metadata.k`: too long: 513 characters (at most 512)", id="value"
        ),
        pytest.param("k: 3", "`metadata.k`: must be a string, not the number 3", id="not-text"),
    ],
)
def test_metadata_keys_and_values_are_limited(line: str, expected: str) -> None:
    found = issues(f"name: a\nmodel: m\nmetadata:\n  {line}\n")
    assert len(found) == 1
    assert found[0].startswith("a.yaml:4:")
    assert expected in found[0]


def test_spec_vars_cannot_read_the_environment() -> None:
    found = issues("name: a\nmodel: m\nvars:\n  token: {env: SECRET}\n")
    assert found == [
        "a.yaml:4:10: `vars.token`: environment variables can only be mapped in kit.yaml `vars`"
    ]


TEST_BASE = """\
name: a
model: m
tools:
  - type: function
    name: get_order
tests:
"""


def test_issues(body: str) -> list[str]:
    return issues(TEST_BASE + textwrap.dedent(body))


test_issues.__test__ = False  # type: ignore[attr-defined]


def test_test_names_are_unique_per_assistant() -> None:
    found = test_issues(
        """\
        - name: greets
          turns: [{user: hi}]
        - name: greets
          turns: [{user: hello}]
        """
    )
    assert found == ["a.yaml:9:9: duplicate test name `greets` (first used at line 7)"]


def test_an_expectation_holds_exactly_one_assertion() -> None:
    found = test_issues(
        """\
        - name: t
          turns:
            - user: hi
              expect:
                - {contains: a, regex: b}
                - {}
                - contians: x
        """
    )
    assert found == [
        "a.yaml:11:11: `tests[0].turns[0].expect[0]`: an expectation holds exactly one assertion, "
        "found `contains`, `regex`: put each in its own list item",
        "a.yaml:12:11: `tests[0].turns[0].expect[1]`: empty expectation: write one assertion such "
        "as `contains: text`",
        "a.yaml:13:11: `tests[0].turns[0].expect[2]`: unknown key `contians`; did you mean "
        "`contains`?",
    ]


def test_assertion_values_are_checked() -> None:
    found = test_issues(
        """\
        - name: t
          turns:
            - user: hi
              expect:
                - regex: "("
                - tool_called: {name: get_ordr}
                - tool_sequence: {calls: [{name: get_order}], order: sideways}
                - json: false
                - python: "not a target"
                - not: {max_latency_ms: -1}
        """
    )
    assert found == [
        "a.yaml:11:18: `tests[0].turns[0].expect[0].regex`: invalid regular expression: missing ), "
        "unterminated subpattern at position 0",
        "a.yaml:12:31: the assistant has no tool `get_ordr`; did you mean `get_order`?",
        'a.yaml:13:62: `tests[0].turns[0].expect[2].tool_sequence.order`: "sideways" is not one '
        "of: "
        "in_order, any_order",
        "a.yaml:14:17: `tests[0].turns[0].expect[3].json`: must be true",
        'a.yaml:15:19: `tests[0].turns[0].expect[4].python`: "not a target" is not valid: it must '
        "match ^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$",
        "a.yaml:16:33: `tests[0].turns[0].expect[5].not.max_latency_ms`: -1 is too small: must be "
        "greater than 0",
    ]


def test_mocks_are_checked_against_the_declared_function_tools() -> None:
    found = test_issues(
        """\
        - name: t
          repeat: 2
          min_pass: 3
          mocks:
            get_ordr: {returns: 1}
            get_order: {returns: 1, error: boom}
          turns:
            - user: hi
              mocks:
                get_order: {default: {returns: 1}}
        """
    )
    assert found == [
        "a.yaml:9:13: `min_pass` (3) is more than `repeat` (2)",
        "a.yaml:11:5: mock for `get_ordr`, but the assistant declares no function tool `get_ordr`; "
        "did you mean `get_order`?",
        "a.yaml:12:16: mock `get_order` holds `returns`, `error`: use exactly one of `returns`, "
        "`sequence`, `error` or `when`",
        "a.yaml:16:20: mock `get_order` needs one of `returns`, `sequence`, `error` or `when`",
        "a.yaml:16:21: mock `get_order`: `default` only goes with `when`",
    ]


def test_when_cases_need_args_and_one_outcome() -> None:
    found = test_issues(
        """\
        - name: t
          mocks:
            get_order:
              when:
                - {args: {id: 1}}
                - {args: {id: {regex: "["}}, returns: 1}
          turns: [{user: hi}]
        """
    )
    assert found == [
        "a.yaml:11:11: `tests[0].mocks.get_order.when[0]`: a `when` case needs `returns` or "
        "`error` "
        "beside `args`",
        "a.yaml:12:31: `tests[0].mocks.get_order.when[1].args.id.regex`: invalid regular "
        "expression: "
        "unterminated character set at position 0",
    ]


def test_a_test_needs_turns_and_each_turn_a_user_message() -> None:
    found = test_issues(
        """\
        - name: t
          turns: []
        - name: u
          turns: [{expect: []}]
        """
    )
    assert found == [
        "a.yaml:8:10: `tests[0].turns`: must not be empty",
        "a.yaml:10:11: `tests[1].turns[0]`: missing required key `user`",
    ]


@pytest.mark.parametrize(
    "source, expected",
    [
        pytest.param(
            "- a\n",
            "a.yaml:1:1: the top level of a spec must be a mapping (one assistant), not a list",
            id="list",
        ),
        pytest.param(
            "just text\n",
            "a.yaml:1:1: the top level of a spec must be a mapping (one assistant), not the "
            'string "just text"',
            id="text",
        ),
        pytest.param(
            "~\n", "a.yaml:1:1: file is empty: a spec needs at least `name` and `model`", id="null"
        ),
    ],
)
def test_the_top_level_must_be_one_assistant(source: str, expected: str) -> None:
    assert issues(source) == [expected]


def test_kit_yaml_errors_are_positioned_too() -> None:
    doc = parse_yaml(
        "targets:\n  prod: {provider: azure}\nserver:\n  models:\n    default: {backend: "
        "llama-cpp, n_ctx: 0}\n",
        "kit.yaml",
    )
    found = sorted(str(i) for i in check_kit(doc))
    assert found == [
        'kit.yaml:2:20: `targets.prod.provider`: "azure" is not one of: local, dashscope, openai',
        "kit.yaml:5:42: `server.models.default.n_ctx`: 0 is too small: must be at least 128",
    ]


def test_kit_yaml_model_backends_take_only_their_own_options() -> None:
    doc = parse_yaml("server:\n  models:\n    m: {backend: scripted, path: x.gguf}\n", "kit.yaml")
    assert [str(i) for i in check_kit(doc)] == [
        "kit.yaml:3:28: `server.models.m`: unknown key `path`; expected one of: backend, script, "
        "delay_ms, rules, default, chunk_chars, context_window"
    ]


@pytest.mark.parametrize("name", ["assistant", "test", "kit"])
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(load_schema(name))


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "if":
                continue  # conditions, not documentation
            if key == "properties" and isinstance(value, dict):
                found.extend((f"{path}.{name}", sub) for name, sub in value.items())
            found.extend(_properties(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_properties(value, f"{path}[{index}]"))
    return found


@pytest.mark.parametrize("name", ["assistant", "test", "kit"])
def test_every_property_has_a_title_and_a_description(name: str) -> None:
    schema = load_schema(name)
    missing = []
    for path, sub in _properties(schema):
        if "$ref" in sub and set(sub) == {"$ref"}:
            target = sub["$ref"].split("/")[-1]
            sub = {**sub, **schema.get("$defs", {}).get(target, {})}
            if sub.get("$ref", "").startswith("test.schema.json"):
                sub = {**sub, **load_schema("test")["$defs"][target]}
        if not sub.get("title") or not sub.get("description"):
            missing.append(path)
    assert missing == []


def test_validators_are_compiled_once() -> None:
    assert schema_validator("assistant") is schema_validator("assistant")
