"""Whatever a spec file or kit.yaml holds, only the kit's own errors come out, at file:line:col."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit_fuzz_settings import fuzz_settings
from kit_fuzz_spec import (
    VALID_KIT,
    VALID_SPEC,
    SpecCase,
    dump,
    dumped,
    inner_values,
    kit_inner_values,
    kit_structures,
    mutated,
    spec_structures,
    templates,
    yaml_texts,
)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpecCase]:
    spec_case = SpecCase(tmp_path_factory.mktemp("spec-fuzz"))
    yield spec_case
    spec_case.close()


KIT = dump(VALID_KIT)
HEAD = "name: a\nmodel: m\n"
FUNCTION = "tools: [{type: function, name: f, parameters: %s}]\n"


def test_the_base_spec_and_kit_load(case: SpecCase) -> None:
    """The seeds the mutations start from are valid, so mutations reach every layer."""
    assert case.check(dump(VALID_SPEC), KIT).kind == "ok"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 5000 + "]" * 5000, id="deep-flow-list"),
        pytest.param("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 400)), id="deep-map"),
        pytest.param("&a [*a]", id="recursive-alias"),
        pytest.param("a: &a\n  b: *a\n", id="recursive-alias-in-map"),
        pytest.param("? [a, b]\n: c\n", id="complex-key"),
        pytest.param("name: !!binary aGk=\nmodel: m\n", id="binary-tag"),
        pytest.param("name: !!python/object:os.system x\n", id="python-tag"),
        pytest.param("name: a\nmodel: m\n---\nname: b\n", id="two-documents"),
        pytest.param("\ufeffname: a\nmodel: m\n", id="bom"),
        pytest.param("name: a\u2028model: m\n", id="unicode-line-separator"),
        pytest.param('name: "\\uD800"\nmodel: m\n', id="lone-surrogate-escape"),
        pytest.param(
            'name: a\nmodel: m\ninstructions: "{{ x }}\u2028{{ y }}"\n', id="ls-in-template"
        ),
        pytest.param("%YAML 1.1\n%YAML 1.1\n---\na: b\n", id="double-directive"),
        pytest.param("<<: [1, 2]\n", id="merge-of-scalars"),
        pytest.param("a: 1\n<<: {a: 2}\n<<: {b: 3}\n", id="two-merges"),
        pytest.param("name: a\nmodel: m\nsettings: {temperature: .nan}\n", id="nan"),
        pytest.param("name: a\nmodel: m\nsettings: {max_tokens: 1e999}\n", id="inf"),
        pytest.param(HEAD + "settings: {top_k: 99999999999999999999999}\n", id="bigint"),
        pytest.param("name: a\nmodel: m\nmetadata: {1: 2}\n", id="int-key"),
        pytest.param(
            HEAD + FUNCTION % "{$ref: '#/x'}",
            id="dangling-ref",
        ),
        pytest.param(
            HEAD + FUNCTION % "{properties: {a: {$ref: 'http://127.0.0.1:1/x'}}}",
            id="remote-ref",
        ),
    ],
)
def test_hostile_documents_are_refused_or_loaded_never_crash(case: SpecCase, text: str) -> None:
    case.check(text)
    case.check(text, KIT)


@fuzz_settings(200)
@given(text=yaml_texts)
def test_random_yaml_text(case: SpecCase, text: str) -> None:
    case.check(text)


@fuzz_settings(50)
@given(raw=st.binary(max_size=200))
def test_random_bytes(case: SpecCase, raw: bytes) -> None:
    case.check(raw)


@fuzz_settings(150)
@given(text=dumped(spec_structures))
def test_random_structures(case: SpecCase, text: str) -> None:
    case.check(text, KIT)


@fuzz_settings(200)
@given(text=dumped(mutated(VALID_SPEC, inner_values)))
def test_mutations_of_a_valid_spec(case: SpecCase, text: str) -> None:
    case.check(text, KIT)


@fuzz_settings(100)
@given(template=templates, block=st.booleans())
def test_random_instruction_templates(case: SpecCase, template: str, block: bool) -> None:
    spec: dict[str, Any] = {"name": "t", "model": "m", "instructions": template}
    case.check(dump(spec, width=10_000 if block else 20), KIT)


@fuzz_settings(80)
@given(kit=dumped(kit_structures))
def test_random_kit_files(case: SpecCase, kit: str) -> None:
    case.check(dump(VALID_SPEC), kit)


@fuzz_settings(80)
@given(kit=dumped(mutated(VALID_KIT, kit_inner_values)))
def test_mutations_of_a_valid_kit_file(case: SpecCase, kit: str) -> None:
    case.check(dump(VALID_SPEC), kit)


@fuzz_settings(50)
@given(kit=yaml_texts)
def test_random_kit_text(case: SpecCase, kit: str) -> None:
    case.check(dump(VALID_SPEC), kit)


def test_positions_point_into_the_file(case: SpecCase, tmp_path: Path) -> None:
    """The checker itself catches an issue past the end of the file."""
    outcome = case.check("name: a\nmodel: m\nbogus: 1\n")
    assert outcome.kind == "spec" and "fuzz.yaml:3:1: " in outcome.detail


# -- what the fuzzer found (each was an uncaught exception or a broken issue line) -------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "name: !!int \nmodel: m\n", "fuzz.yaml:1:7: `` is not a valid `!!int` value", id="int"
        ),
        pytest.param(
            "name: a\nmodel: !!bool maybe\n",
            "fuzz.yaml:2:8: `maybe` is not a valid `!!bool` value",
            id="bool",
        ),
        pytest.param(
            "name: a\nmodel: m\nsettings: {top_p: !!float }\n",
            "fuzz.yaml:3:19: `` is not a valid `!!float` value",
            id="float",
        ),
    ],
)
def test_a_scalar_that_does_not_fit_its_tag_is_a_spec_issue(
    case: SpecCase, text: str, expected: str
) -> None:
    outcome = case.check(text)
    assert outcome.kind == "spec" and outcome.detail.endswith(expected)


def test_a_mock_whose_when_is_not_a_list_is_a_spec_issue(case: SpecCase) -> None:
    spec = {
        "name": "a",
        "model": "m",
        "tools": [{"type": "function", "name": "f"}],
        "tests": [{"name": "t", "mocks": {"f": {"when": 1}}, "turns": [{"user": "hi"}]}],
    }
    outcome = case.check(dump(spec))
    assert outcome.kind == "spec" and "`tests[0].mocks.f.when`" in outcome.detail


def test_an_env_reference_whose_name_is_not_text_is_a_kit_issue(case: SpecCase) -> None:
    outcome = case.check(HEAD, "vars:\n  region:\n    env: {x: 1}\n")
    assert outcome.kind == "config"
    assert "kit.yaml:3:10: `vars.region.env`: must be a string, not a mapping" in outcome.detail


def test_a_key_with_a_line_break_stays_on_one_issue_line(case: SpecCase) -> None:
    outcome = case.check(HEAD + '"bad\\rkey": 1\n')
    assert outcome.kind == "spec"
    assert "fuzz.yaml:3:1: unknown key `bad\\rkey`" in outcome.detail
    assert len(outcome.detail.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("éé\x1f", "1:3", id="after-multibyte"),
        pytest.param("a: b\r\nc: é\x1f", "2:5", id="crlf-and-multibyte"),
        pytest.param("a: b\rc: \x1f", "2:4", id="cr-break"),
        pytest.param("\u2028\x1f", "2:1", id="line-separator-break"),
    ],
)
def test_a_control_character_is_reported_at_its_character_column(
    case: SpecCase, text: str, where: str
) -> None:
    outcome = case.check(text)
    assert outcome.kind == "spec" and f"fuzz.yaml:{where}: character U+001F" in outcome.detail


@pytest.mark.parametrize(
    ("raw", "where", "byte"),
    [
        pytest.param(b"\r\x00\x80", "2:2", "80", id="after-a-cr-break"),
        pytest.param(b"a\r\nb\xc3\xa9\xff", "2:3", "ff", id="after-multibyte"),
        pytest.param(b"\xef\xbb\xbfab\x80", "1:3", "80", id="after-a-bom"),
    ],
)
def test_bytes_that_are_not_utf8_are_reported_at_their_character_column(
    case: SpecCase, raw: bytes, where: str, byte: str
) -> None:
    outcome = case.check(raw)
    assert outcome.kind == "spec"
    assert f"fuzz.yaml:{where}: file is not valid UTF-8 (byte 0x{byte})" in outcome.detail
