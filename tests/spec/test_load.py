"""YAML parsing with positions: duplicate keys, tabs, aliases, encodings, sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant_kit.errors import SpecError
from assistant_kit.spec import load
from assistant_kit.spec.load import (
    MAX_FILE_BYTES,
    Position,
    find_spec_files,
    parse_yaml,
    read_document,
)

from .conftest import FIXTURES


def refusal(source: str | bytes) -> str:
    with pytest.raises(SpecError) as info:
        parse_yaml(source, "x.yaml")
    assert len(info.value.issues) >= 1
    return str(info.value)


def test_every_value_and_key_keeps_its_line_and_column() -> None:
    doc = parse_yaml(
        "name: a\nmodel: m\ntools:\n  - code_interpreter\n  - {type: function}\n", "x.yaml"
    )
    assert doc.data == {
        "name": "a",
        "model": "m",
        "tools": ["code_interpreter", {"type": "function"}],
    }
    assert doc.position(["model"]) == Position(2, 8)
    assert doc.key_position(["model"]) == Position(2, 1)
    assert doc.position(["tools", 1, "type"]) == Position(5, 12)
    assert doc.key_position(["tools", 1, "type"]) == Position(5, 6)


def test_an_unknown_path_falls_back_to_its_nearest_ancestor() -> None:
    doc = parse_yaml("a:\n  b: 1\n", "x.yaml")
    assert doc.position(["a", "b", "c", 0]) == Position(2, 6)
    assert doc.position(["zzz"]) == Position(1, 1)


def test_block_scalars_remember_their_style() -> None:
    doc = parse_yaml("instructions: |\n  one\n  two\n", "x.yaml")
    assert doc.position(["instructions"]) == Position(1, 15, "|")
    assert doc.data["instructions"] == "one\ntwo\n"


def test_scalars_are_typed_like_yaml_but_timestamps_stay_text() -> None:
    doc = parse_yaml(
        "i: 1\nf: 1.5\nb: true\nn: null\nd: 2024-01-01\nq: '1'\nt: !!str 2\n", "x.yaml"
    )
    assert doc.data == {
        "i": 1,
        "f": 1.5,
        "b": True,
        "n": None,
        "d": "2024-01-01",
        "q": "1",
        "t": "2",
    }


def test_keys_are_always_the_text_written() -> None:
    assert parse_yaml("1: a\ntrue: b\n", "x.yaml").data == {"1": "a", "true": "b"}


def test_duplicate_keys_are_refused_at_the_second_key() -> None:
    message = refusal("name: a\nmodel: m\nname: b\n")
    assert message == (
        "x.yaml:3:1: duplicate key `name` (first defined at line 1); "
        "YAML would silently keep only the last one"
    )


def test_every_duplicate_key_is_reported() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a: 1\na: 2\nb:\n  c: 1\n  c: 2\n", "x.yaml")
    assert [(i.line, i.col) for i in info.value.issues] == [(2, 1), (5, 3)]


@pytest.mark.parametrize(
    "source, line",
    [
        pytest.param("name: a\n\tmodel: b\n", 2, id="top-level"),
        pytest.param("name: a\nsettings:\n\ttemperature: 1\n", 3, id="nested"),
        pytest.param("a:\n  b: 1\n \tc: 2\n", 3, id="after-spaces"),
    ],
)
def test_tab_indentation_gets_a_plain_message_at_the_tab(source: str, line: int) -> None:
    message = refusal(source)
    assert message.startswith(f"x.yaml:{line}:")
    assert "tab character in indentation" in message


def test_syntax_errors_name_the_problem_and_where_the_construct_started() -> None:
    message = refusal("name: [a\nmodel: b\n")
    assert message.startswith("x.yaml:2:")
    assert "YAML syntax error" in message
    assert "line 1, column 7" in message


@pytest.mark.parametrize("source", ["", "# just a comment\n", "\n\n"])
def test_an_empty_file_is_refused(source: str) -> None:
    assert refusal(source) == "x.yaml:1:1: file is empty: a spec needs at least `name` and `model`"


def test_a_second_document_is_refused() -> None:
    assert refusal("a: 1\n---\nb: 2\n").startswith(
        "x.yaml:2:1: a spec file holds one YAML document"
    )


def test_bytes_that_are_not_utf8_are_refused_at_the_bad_byte() -> None:
    message = refusal(b"name: a\ndescription: caf\xe9\n")
    assert message == "x.yaml:2:17: file is not valid UTF-8 (byte 0xe9); save it as UTF-8"


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert parse_yaml(b"\xef\xbb\xbfname: a\n", "x.yaml").data == {"name": "a"}


def test_a_file_over_the_size_limit_is_refused_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\nname: a\n")

    def no_reading(self: Path) -> bytes:
        raise AssertionError("a file over the limit must not be read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(SpecError) as info:
        read_document(path, "big.yaml")
    assert str(info.value).startswith("big.yaml:1:1: file is too large: 1,000,011 bytes")


def test_an_alias_bomb_is_refused_while_composing() -> None:
    source = (FIXTURES / "bad" / "alias-bomb.yaml").read_text()
    message = refusal(source)
    # 9**5 values would be needed by line 6; the refusal comes there, nothing is expanded.
    assert message.startswith("x.yaml:6:")
    assert "more than 100,000 values once aliases are expanded" in message


def test_aliases_share_the_anchored_value_instead_of_copying_it() -> None:
    doc = parse_yaml("a: &x [1, 2]\nb: *x\nc: *x\n", "x.yaml")
    assert doc.data["b"] is doc.data["a"] is doc.data["c"]


def test_alias_expansion_counts_against_the_node_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "MAX_NODES", 20)
    parse_yaml("a: &x [1, 2, 3]\nb: *x\n", "x.yaml")
    message = refusal("a: &x [1, 2, 3, 4, 5, 6]\nb: *x\nc: *x\nd: *x\n")
    assert message.startswith("x.yaml:3:4: document too large")  # 1 + 7 + 7 + 7 > 20


def test_recursive_and_undefined_aliases_are_refused() -> None:
    assert refusal("a: &x [1, *x]\n") == "x.yaml:1:11: recursive alias `*x` refers to itself"
    assert "has no anchor" in refusal("a: *nope\n")


def test_merge_keys_merge_and_explicit_keys_win() -> None:
    doc = parse_yaml("base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n", "x.yaml")
    assert doc.data["thing"] == {"y": 3, "x": 1}


def test_python_tags_are_refused() -> None:
    message = refusal("a: !!python/object/apply:os.system [ls]\n")
    assert "unsupported YAML tag `!!python/object/apply:os.system`" in message


def test_nesting_too_deep_is_refused() -> None:
    assert "levels deep" in refusal("a: " + "[" * 200 + "]" * 200 + "\n")


def test_a_top_level_list_parses_for_the_validator_to_refuse() -> None:
    assert parse_yaml("- a\n- b\n", "x.yaml").data == ["a", "b"]


def test_find_spec_files_walks_folders_and_skips_partials_and_hidden(tmp_path: Path) -> None:
    (tmp_path / "specs" / "partials").mkdir(parents=True)
    (tmp_path / "specs" / ".hidden").mkdir()
    (tmp_path / "specs" / "team").mkdir()
    for name in ["a.yaml", "b.yml", "notes.md", "partials/p.yaml", ".hidden/h.yaml", "team/c.yaml"]:
        (tmp_path / "specs" / name).write_text("x: 1\n")
    found = find_spec_files([tmp_path / "specs"], exclude=[tmp_path / "specs" / "partials"])
    assert [p.relative_to(tmp_path / "specs").as_posix() for p in found] == [
        "a.yaml",
        "b.yml",
        "team/c.yaml",
    ]


def test_a_dangling_link_is_named_by_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "assistants").mkdir()
    (tmp_path / "assistants" / "bot.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (link,) = find_spec_files([Path("assistants")])
    with pytest.raises(SpecError) as info:
        read_document(link)
    assert str(info.value).startswith("assistants/bot.yaml:1:1: cannot read file:")


def test_a_tab_after_a_dash_is_named() -> None:
    assert refusal("tools:\n  -\tcode_interpreter\n") == (
        "x.yaml:2:4: tab character where YAML expects spaces"
    )


def test_tabs_where_yaml_allows_them_are_fine() -> None:
    doc = parse_yaml("model:\tqwen\ninstructions: |\n  a\n  \tb\nx: 1\t# c\n", "x.yaml")
    assert doc.data == {"model": "qwen", "instructions": "a\n\tb\n", "x": 1}


def test_control_characters_are_refused_at_their_position() -> None:
    assert refusal("name: a\nmodel: m\x00\n") == (
        "x.yaml:2:9: character U+0000 is not allowed in YAML (control characters are refused)"
    )


YAMLISH = st.lists(
    st.sampled_from([*"ab:-[]{}&*!|>'\"#\n\t ,?%@`~0123456789.\\", "é", "\x00", "<<", "&x", "*x"]),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_any_text_either_parses_or_gives_positioned_issues(source: str) -> None:
    try:
        doc = parse_yaml(source, "x.yaml")
    except SpecError as exc:
        lines = source.count("\n") + 2
        for issue in exc.issues:
            assert issue.file == "x.yaml"
            assert 1 <= issue.line <= lines and issue.col >= 1
            assert "\n" not in issue.message
    else:
        assert all(isinstance(p, Position) for p in doc.positions.values())
