"""`kit init`: a new project that validates and renders at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant_kit.cli import ExitCode, cli, main
from assistant_kit.spec.project import load_project


def test_init_writes_a_project_that_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "bots"
    result = CliRunner().invoke(cli, ["init", str(target)], catch_exceptions=False)
    assert result.exit_code == 0
    for name in [
        "kit.yaml",
        "assistants/helper.yaml",
        "assistants/partials/tone.md.j2",
        "schemas/assistant.schema.json",
        "schemas/test.schema.json",
        "schemas/kit.schema.json",
    ]:
        assert (target / name).is_file(), name
        assert f"created {target / name}" in result.output
    assert (
        (target / "assistants" / "helper.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=../schemas/assistant.schema.json\n")
    )

    monkeypatch.chdir(target)
    validated = CliRunner().invoke(cli, ["validate"], catch_exceptions=False)
    assert validated.exit_code == 0
    assert validated.output.splitlines()[0] == "ok  helper  assistants/helper.yaml  (1 test)"
    project = load_project()
    (spec,) = project.specs
    assert spec.instructions == (
        "You are the helpful assistant of Example Co.\n"
        "Answer briefly and politely, in the language of the question."
    )
    assert spec.tests[0].tags == ("smoke",)
    rendered = CliRunner().invoke(cli, ["render", "helper"], catch_exceptions=False)
    assert json.loads(rendered.output)["name"] == "Helper"


def test_init_defaults_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["init"], catch_exceptions=False)
    assert result.exit_code == 0
    assert (tmp_path / "kit.yaml").is_file()
    assert result.output.endswith(
        "Next: kit validate && kit apply --yes && kit test && kit chat helper\n"
    )


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kit.yaml").write_text("# mine\n")
    with pytest.raises(SystemExit) as info:
        main(["init"])
    assert info.value.code == ExitCode.USAGE
    assert "kit.yaml already exists; use --force to overwrite" in capsys.readouterr().err
    assert (tmp_path / "kit.yaml").read_text() == "# mine\n"
    with pytest.raises(SystemExit) as info:
        main(["init", "--force"])
    assert info.value.code == ExitCode.OK
    assert (tmp_path / "kit.yaml").read_text().startswith("# yaml-language-server")


def test_a_folder_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["init", str(tmp_path / "blocker" / "project")])
    err = capsys.readouterr().err
    assert info.value.code == ExitCode.USAGE
    assert err.startswith(f"Error: cannot write {tmp_path / 'blocker' / 'project'}")
    assert "Traceback" not in err


def test_the_schemas_written_are_the_packaged_ones(tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["init", str(tmp_path)], catch_exceptions=False)
    packaged = Path(__file__).resolve().parent.parent.parent / "assistant_kit" / "schemas"
    for name in ["assistant.schema.json", "test.schema.json", "kit.schema.json"]:
        assert (tmp_path / "schemas" / name).read_text() == (packaged / name).read_text()


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["init", "--help"])
    assert "kit init my-assistants" in result.output


def test_init_names_the_project_ignores_kit_state_and_runs_tests_four_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "Support Bots"
    result = CliRunner().invoke(cli, ["init", str(target)], catch_exceptions=False)
    assert result.output.endswith(
        f"Next: cd {target} && kit validate && kit apply --yes && kit test && kit chat helper\n"
    )
    assert (target / ".gitignore").read_text().splitlines()[-1] == ".kit/"
    monkeypatch.chdir(target)
    project = load_project()
    assert re.fullmatch(r"support-bots-[0-9a-f]{6}", project.project_id)
    assert project.test["concurrency"] == 4
    # a second project in a folder of the same name is another project
    other = tmp_path / "elsewhere" / "Support Bots"
    CliRunner().invoke(cli, ["init", str(other)], catch_exceptions=False)
    monkeypatch.chdir(other)
    assert load_project().project_id != project.project_id


def test_init_adds_kit_state_to_an_existing_gitignore_once(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("__pycache__/")
    result = CliRunner().invoke(cli, ["init", str(tmp_path)], catch_exceptions=False)
    assert f"added .kit/ to {tmp_path / '.gitignore'}" in result.output
    assert (tmp_path / ".gitignore").read_text().splitlines() == [
        "__pycache__/",
        "# the embedded server's state and kit chat's history",
        ".kit/",
    ]
    CliRunner().invoke(cli, ["init", str(tmp_path), "--force"], catch_exceptions=False)
    assert (tmp_path / ".gitignore").read_text().count(".kit/") == 1


def test_stale_schemas_are_noticed_and_refreshed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    CliRunner().invoke(cli, ["init", str(tmp_path)], catch_exceptions=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas" / "assistant.schema.json").write_text("{}")  # an older kit's copy
    validated = CliRunner().invoke(cli, ["validate"], catch_exceptions=False)
    assert validated.exit_code == 0
    assert validated.stderr == (
        "note: schemas/assistant.schema.json differ from the installed kit's schemas; "
        "`kit init --schemas` refreshes them\n"
    )
    refreshed = CliRunner().invoke(cli, ["init", "--schemas"], catch_exceptions=False)
    assert refreshed.exit_code == 0
    assert "created schemas/assistant.schema.json" in refreshed.output
    again = CliRunner().invoke(cli, ["validate"], catch_exceptions=False)
    assert again.stderr == ""
    assert (tmp_path / "kit.yaml").read_text().startswith("# yaml-language-server")
