"""`kit validate`: every kind of bad input is exit 1 with file:line:col, never a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant_kit.cli import COMMANDS, ExitCode, cli, main
from assistant_kit.spec.load import MAX_FILE_BYTES

REPO = Path(__file__).resolve().parent.parent.parent
BAD = REPO / "tests" / "fixtures" / "bad"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project (no kit.yaml) in the working directory."""
    (tmp_path / "assistants").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out, err


@pytest.mark.parametrize(
    "fixtures, expected",
    [
        pytest.param(
            ["yaml-syntax.yaml"],
            [
                "assistants/yaml-syntax.yaml:3:13: YAML syntax error: did not find expected ',' "
                "or ']' "
                "(while parsing a flow sequence started at line 2, column 8)"
            ],
            id="yaml-syntax-error",
        ),
        pytest.param(
            ["tab-indent.yaml"],
            [
                "assistants/tab-indent.yaml:4:1: tab character in indentation: YAML indents with "
                "spaces only"
            ],
            id="tab-indentation",
        ),
        pytest.param(
            ["duplicate-key.yaml"],
            [
                "assistants/duplicate-key.yaml:4:1: duplicate key `description` (first defined "
                "at line 3); "
                "YAML would silently keep only the last one"
            ],
            id="duplicate-key",
        ),
        pytest.param(
            ["wrong-type.yaml"],
            [
                "assistants/wrong-type.yaml:3:8: `tools`: must be a list, not the string "
                '"code_interpreter"'
            ],
            id="wrong-type",
        ),
        pytest.param(
            ["unknown-key.yaml"],
            [
                "assistants/unknown-key.yaml:3:1: unknown key `instrucions`; did you mean "
                "`instructions`?"
            ],
            id="unknown-key",
        ),
        pytest.param(
            ["missing-model.yaml"],
            ["assistants/missing-model.yaml:1:1: missing required key `model`"],
            id="missing-model",
        ),
        pytest.param(
            ["function-name.yaml"],
            [
                'assistants/function-name.yaml:5:11: `tools[0].name`: "get weather!" is not '
                "valid: use "
                "1-64 letters, digits, `_` or `-`"
            ],
            id="invalid-function-name",
        ),
        pytest.param(
            ["function-parameters.yaml"],
            [
                "assistants/function-parameters.yaml:9:22: function `get_weather` parameters are "
                "not a "
                'valid JSON Schema: "strng" is not a JSON Schema type (use one of: array, boolean, '
                "integer, null, number, object, string)"
            ],
            id="parameters-not-a-json-schema",
        ),
        pytest.param(
            ["instructions-too-long.yaml"],
            [
                "assistants/instructions-too-long.yaml:3:1: `instructions`: rendered text is too "
                "long: "
                "40,000 characters (at most 32,768)"
            ],
            id="instructions-over-the-limit",
        ),
        pytest.param(
            ["too-many-metadata.yaml"],
            [
                "assistants/too-many-metadata.yaml:4:3: `metadata`: too many metadata pairs: 15 "
                "(at most "
                "13; the API allows 16 and the kit keeps 3 for its own marks)"
            ],
            id="too-many-metadata-pairs",
        ),
        pytest.param(
            ["undefined-variable.yaml"],
            [
                "assistants/undefined-variable.yaml:5:3: undefined template variable `regoin`; "
                "define it "
                "in the spec's `vars`, the target's or kit.yaml's"
            ],
            id="undefined-template-variable",
        ),
        pytest.param(
            ["missing-include.yaml"],
            [
                "assistants/missing-include.yaml:5:3: include not found: `nowhere.md.j2` (no "
                "partials "
                "folder)"
            ],
            id="missing-include",
        ),
        pytest.param(
            ["template-syntax.yaml"],
            [
                "assistants/template-syntax.yaml:5:3: template syntax error: Unexpected end of "
                "template. "
                "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The "
                "innermost "
                "block that needs to be closed is 'if'."
            ],
            id="template-syntax-error",
        ),
        pytest.param(
            ["same-name-a.yaml", "same-name-b.yaml"],
            [
                "assistants/same-name-a.yaml:1:1: assistant name `twice` is also declared in "
                "assistants/same-name-b.yaml:2",
                "assistants/same-name-b.yaml:2:1: assistant name `twice` is also declared in "
                "assistants/same-name-a.yaml:1",
            ],
            id="two-files-one-name",
        ),
        pytest.param(
            ["duplicate-test-name.yaml"],
            [
                "assistants/duplicate-test-name.yaml:6:11: duplicate test name `greets` (first "
                "used at "
                "line 4)"
            ],
            id="duplicate-test-names",
        ),
        pytest.param(
            ["empty.yaml"],
            ["assistants/empty.yaml:1:1: file is empty: a spec needs at least `name` and `model`"],
            id="empty-file",
        ),
        pytest.param(
            ["top-level-list.yaml"],
            [
                "assistants/top-level-list.yaml:1:1: the top level of a spec must be a mapping "
                "(one "
                "assistant), not a list"
            ],
            id="top-level-list",
        ),
        pytest.param(
            ["not-utf8.yaml"],
            [
                "assistants/not-utf8.yaml:3:17: file is not valid UTF-8 (byte 0xe9); save it as "
                "UTF-8"
            ],
            id="not-utf8",
        ),
        pytest.param(
            ["alias-bomb.yaml"],
            [
                "assistants/alias-bomb.yaml:6:8: document too large: more than 100,000 values once "
                "aliases are expanded (is this an alias bomb?)"
            ],
            id="alias-bomb",
        ),
    ],
)
def test_bad_input_exits_1_with_positioned_messages(
    project: Path, capsys: pytest.CaptureFixture[str], fixtures: list[str], expected: list[str]
) -> None:
    for name in fixtures:
        shutil.copy(BAD / name, project / "assistants" / name)
    code, out, err = run(["validate"], capsys)
    assert code == ExitCode.FAILED
    assert out == ""
    assert err.splitlines() == expected
    assert "Traceback" not in err


def test_a_file_over_the_size_limit_exits_1(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = project / "assistants" / "big.yaml"
    big.write_bytes(b"name: big\nmodel: m\ndescription: " + b"x" * MAX_FILE_BYTES + b"\n")
    code, _, err = run(["validate"], capsys)
    assert code == ExitCode.FAILED
    assert (
        err
        == "assistants/big.yaml:1:1: file is too large: 1,000,033 bytes (spec files are limited "
        "to 1,000,000 bytes)\n"
    )


def test_every_bad_fixture_at_once_gives_every_message_sorted(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in BAD.iterdir():
        shutil.copy(path, project / "assistants" / path.name)
    code, _, err = run(["validate"], capsys)
    assert code == ExitCode.FAILED
    lines = err.splitlines()
    files = {line.split(":")[0] for line in lines}
    assert len(files) == len(list(BAD.iterdir()))
    assert lines == sorted(
        lines, key=lambda s: (s.split(":")[0], int(s.split(":")[1]), int(s.split(":")[2]))
    )


def test_named_files_are_validated_alone(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(BAD / "missing-model.yaml", project / "assistants")
    (project / "assistants" / "ok.yaml").write_text("name: ok\nmodel: m\n")
    code, out, _ = run(["validate", "assistants/ok.yaml"], capsys)
    assert code == ExitCode.OK
    assert out == "ok  ok  assistants/ok.yaml  (0 tests)\n1 assistant valid (target: local).\n"


def test_json_format_lists_issues_on_stdout(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(BAD / "missing-model.yaml", project / "assistants")
    code, out, err = run(["validate", "--format", "json"], capsys)
    assert code == ExitCode.FAILED
    assert err == ""
    assert json.loads(out) == {
        "ok": False,
        "target": None,
        "assistants": [],
        "issues": [
            {
                "file": "assistants/missing-model.yaml",
                "line": 1,
                "col": 1,
                "message": "missing required key `model`",
            }
        ],
    }


def test_json_format_lists_assistants_with_digests(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "assistants" / "a.yaml").write_text(
        "name: a\nmodel: m\ntests: [{name: t, turns: [{user: hi}]}]\n"
    )
    code, out, _ = run(["validate", "--format", "json"], capsys)
    assert code == ExitCode.OK
    result = json.loads(out)
    assert result["ok"] is True and result["issues"] == [] and result["target"] == "local"
    (entry,) = result["assistants"]
    assert entry["name"] == "a" and entry["file"] == "assistants/a.yaml" and entry["tests"] == 1
    assert len(entry["digest"]) == 64


def test_an_unknown_target_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "assistants" / "a.yaml").write_text("name: a\nmodel: m\n")
    code, _, err = run(["validate", "--target", "prod"], capsys)
    assert code == ExitCode.USAGE
    assert err == "Error: unknown target `prod`; targets: local\n"


def test_a_bad_kit_yaml_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "kit.yaml").write_text("targets:\n  prod: {provider: azure}\n")
    code, _, err = run(["validate"], capsys)
    assert code == ExitCode.USAGE
    assert (
        err == 'Error: kit.yaml:2:20: `targets.prod.provider`: "azure" is not one of: local, '
        "dashscope, openai\n"
    )


def test_a_missing_path_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["validate", "nope.yaml"], capsys)
    assert code == ExitCode.USAGE
    assert "does not exist" in err


def test_no_specs_is_fine(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate"], capsys)
    assert (code, out) == (ExitCode.OK, "No spec files found.\n")


def test_the_examples_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("ACME_REGION", raising=False)
    result = CliRunner().invoke(cli, ["validate"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "ok  art-maestro      assistants/art-maestro.yaml  (2 tests)",
        "ok  data-analyst     assistants/data-analyst.yaml  (2 tests)",
        "ok  geography-tutor  assistants/geography-tutor.yaml  (4 tests)",
        "ok  order-desk       assistants/order-desk.yaml  (2 tests)",
        "4 assistants valid (target: local).",
    ]


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["validate", "--help"])
    assert result.exit_code == 0
    assert "kit validate assistants/art-maestro.yaml" in result.output
    assert "--json PATH" in result.output and "--format" not in result.output


def test_the_installed_command_prints_no_traceback(project: Path) -> None:
    shutil.copy(BAD / "alias-bomb.yaml", project / "assistants")
    shutil.copy(BAD / "not-utf8.yaml", project / "assistants")
    done = subprocess.run(
        [sys.executable, "-m", "assistant_kit", "validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "assistants/alias-bomb.yaml:6:8: document too large: more than 100,000 values once aliases "
        "are expanded (is this an alias bomb?)",
        "assistants/not-utf8.yaml:3:17: file is not valid UTF-8 (byte 0xe9); save it as UTF-8",
    ]


def test_the_readme_cli_reference_matches_the_help_text() -> None:
    readme = (REPO / "README.md").read_text()
    for name in sorted(COMMANDS):
        result = CliRunner().invoke(cli, [name, "--help"], terminal_width=100)
        help_text = result.output.replace("Usage: cli", "Usage: kit")
        assert f"### kit {name}\n\n```\n{help_text}```\n" in readme, (
            f"run `cog -r README.md` ({name})"
        )


# -- what the project decides: routes, judges, python checks, scripts, every template error --


def test_a_model_no_route_takes_is_refused_at_its_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "kit.yaml").write_text(
        "server:\n  models:\n"
        "    qwen-max: {backend: scripted}\n    qwen-plus: {backend: scripted}\n"
    )
    (project / "assistants" / "a.yaml").write_text("name: a\nmodel: qwen-max\n")
    (project / "assistants" / "b.yaml").write_text("# b\nname: b\nmodel:   qwen-turbo\n")
    code, out, err = run(["validate"], capsys)
    assert code == ExitCode.FAILED and out == ""
    assert err.splitlines() == [
        'assistants/b.yaml:3:10: model "qwen-turbo" has no route on the embedded server: kit.yaml '
        "server.models has no entry for it and no `default` (configured: qwen-max, qwen-plus)"
    ]
    # a remote target routes its own models
    (project / "kit.yaml").write_text(
        (project / "kit.yaml").read_text()
        + "targets:\n  cloud: {provider: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
    )
    assert run(["validate", "--target", "cloud"], capsys)[0] == ExitCode.OK


def test_a_scripted_script_with_a_bad_regex_is_refused_at_the_script_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "script.yaml").write_text(
        "rules:\n  - user: hello\n    reply: Hi.\n  - user: '(unclosed'\n    reply: Oops.\n"
    )
    (project / "kit.yaml").write_text(
        "server:\n  models:\n    default: {backend: scripted, script: script.yaml}\n"
    )
    (project / "assistants" / "a.yaml").write_text("name: a\nmodel: m\n")
    code, _, err = run(["validate"], capsys)
    assert code == ExitCode.FAILED
    (line,) = err.splitlines()
    assert line.startswith("script.yaml:4:1: rule 2: bad `user` regex '(unclosed': ")


JUDGED = """\
name: a
model: m
tests:
  - name: t
    turns:
      - user: hi
        expect:
          - contains: hi
          - judge: {rubric: polite}
          - python: checks_here:is_polite
          - python: nosuchmod:fn
          - python: checks_here:nosuchfn
"""


def test_judge_and_python_checks_that_cannot_run_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "assistants" / "a.yaml").write_text(JUDGED)
    (project / "assistants" / "checks_here.py").write_text(
        "def is_polite(turn):\n    return True\n"
    )
    code, _, err = run(["validate"], capsys)
    assert code == ExitCode.FAILED
    lines = err.splitlines()
    assert lines[0] == (
        "assistants/a.yaml:9:13: judge: no judge model: set kit.yaml `test: {judge: {model: "
        "...}}` or `model:` on the check"
    )
    assert lines[1].startswith(
        "assistants/a.yaml:11:13: python: cannot import nosuchmod:fn: ModuleNotFoundError: "
    )
    assert lines[2].startswith(
        "assistants/a.yaml:12:13: python: cannot import checks_here:nosuchfn: AttributeError: "
    )
    assert len(lines) == 3
    (project / "kit.yaml").write_text("test:\n  judge: {model: m}\n")
    spec = project / "assistants" / "a.yaml"
    spec.write_text(
        spec.read_text().replace("{rubric: polite}", "{rubric: polite, target: nowhere}")
    )
    code, _, err = run(["validate"], capsys)
    assert err.splitlines()[0] == (
        "assistants/a.yaml:9:13: judge: target `nowhere` is not defined in kit.yaml (local)"
    )


def test_every_undefined_variable_and_missing_include_is_reported(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "assistants" / "a.yaml").write_text(
        "name: a\nmodel: m\ninstructions: |\n  Hello {{ first }}.\n  {% include 'nope.j2' %}\n"
        "  Bye {{ second }} and {{ first }}.\n"
    )
    code, _, err = run(["validate"], capsys)
    assert code == ExitCode.FAILED
    assert err.splitlines() == [
        "assistants/a.yaml:4:3: undefined template variable `first`; define it in the spec's "
        "`vars`, the target's or kit.yaml's",
        "assistants/a.yaml:5:3: include not found: `nope.j2` (no partials folder)",
        "assistants/a.yaml:6:3: undefined template variable `second`; define it in the spec's "
        "`vars`, the target's or kit.yaml's",
    ]


def test_json_goes_to_a_file_or_to_stdout_with_a_dash(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "assistants" / "a.yaml").write_text("name: a\nmodel: m\n")
    code, out, err = run(["validate", "--json", "-"], capsys)
    assert code == ExitCode.OK and err == ""
    assert json.loads(out)["assistants"][0]["name"] == "a"
    code, out, _ = run(["validate", "--json", "result.json"], capsys)
    assert code == ExitCode.OK
    assert out == "ok  a  assistants/a.yaml  (0 tests)\n1 assistant valid (target: local).\n"
    assert json.loads((project / "result.json").read_text())["ok"] is True
    code, out, err = run(["validate", "--format", "json"], capsys)  # the deprecated spelling
    assert code == ExitCode.OK and json.loads(out)["ok"] is True


def test_a_skipped_test_is_not_held_to_what_it_would_need(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "assistants" / "a.yaml").write_text(
        JUDGED.replace("  - name: t\n", "  - name: t\n    skip: needs a judge\n")
    )
    assert run(["validate"], capsys)[0] == ExitCode.OK
