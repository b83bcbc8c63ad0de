"""`kit plan`, `kit apply`, `kit import`, `kit destroy` on a project folder (embedded target)."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import sys
from pathlib import Path

import pytest

from assistant_kit import connect as targets
from assistant_kit.api.base import AssistantParams
from assistant_kit.cli import ExitCode, main
from assistant_kit.spec.project import load_project

SPEC = """\
# yaml-language-server: $schema=../schemas/assistant.schema.json
name: {name}
model: qwen-max
instructions: |
  You are {name}.
tools:
  - code_interpreter
settings: {{temperature: 0.3}}
"""


def kit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture(params=["openai", "dashscope"])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    (tmp_path / "kit.yaml").write_text(
        f"targets:\n  local: {{provider: local, dialect: {request.param}}}\n", encoding="utf-8"
    )
    (tmp_path / "assistants").mkdir()
    for name in ("alpha", "beta"):
        (tmp_path / "assistants" / f"{name}.yaml").write_text(
            SPEC.format(name=name), encoding="utf-8"
        )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def outside(project: Path, *names: str) -> list[str]:
    """Create assistants on the embedded target without the kit."""

    async def create() -> list[str]:
        async with targets.open_target(load_project(cwd=project)) as client:
            return [
                (await client.create_assistant(AssistantParams(model="m", name=n))).id
                for n in names
            ]

    return asyncio.run(create())


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_apply_then_plan_exits_0_and_an_edited_spec_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = kit(capsys, "plan", "--detailed-exitcode")
    assert code == 2
    assert '  + assistant "alpha"' in out and "Plan: 2 to create, 0 to update, 0 to delete." in out
    assert "\x1b[" not in out  # no colour off a terminal

    code, out, _ = kit(capsys, "apply", "--yes")
    assert code == ExitCode.OK
    assert "Apply complete: 2 created, 0 updated, 0 deleted." in out
    assert (project / ".kit" / "server.db").is_file()

    code, out, _ = kit(capsys, "plan", "--detailed-exitcode")
    assert (code, out) == (0, "No changes. The target matches the specs.\n")

    spec = project / "assistants" / "beta.yaml"
    spec.write_text(spec.read_text().replace("temperature: 0.3", "temperature: 0.6"))
    code, out, _ = kit(capsys, "plan", "--detailed-exitcode")
    assert code == 2
    assert "      ~ temperature    0.3 -> 0.6" in out.splitlines()
    assert "Plan: 0 to create, 1 to update, 0 to delete." in out
    code, out, _ = kit(capsys, "plan")
    assert code == 0


def test_apply_refuses_without_a_terminal_or_yes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = kit(capsys, "apply")
    assert code == ExitCode.USAGE
    assert "Plan: 2 to create" in out
    assert "stdin is not a terminal; pass --yes" in err
    assert kit(capsys, "plan", "--detailed-exitcode")[0] == 2  # nothing was created


@pytest.mark.parametrize(("answer", "expected"), [("n\n", 1), ("y\n", 0)])
def test_apply_asks_on_a_terminal(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    expected: int,
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    code, _, err = kit(capsys, "apply")
    assert code == expected
    assert "Apply these changes? [y/N]" in err
    after = kit(capsys, "plan", "--detailed-exitcode")[0]
    assert after == (2 if answer == "n\n" else 0)


def test_destroy_asks_its_own_question_on_a_terminal(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kit(capsys, "apply", "--yes")[0] == 0
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, _, err = kit(capsys, "destroy")
    assert code == ExitCode.FAILED
    assert "Delete these assistants? [y/N]" in err and "Aborted." in err
    assert kit(capsys, "plan", "--detailed-exitcode")[0] == 0  # nothing was deleted


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_plan_is_coloured_on_a_terminal_unless_no_color_is_set(
    project: Path, monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    with pytest.raises(SystemExit):
        main(["plan"])
    assert ("\x1b[32m" in out.getvalue()) is coloured
    assert "Plan: 2 to create" in out.getvalue()


def test_plan_and_apply_speak_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = kit(capsys, "plan", "--json", "-", "--name", "alpha")
    body = json.loads(out)
    assert code == 0 and body["summary"]["create"] == 1
    assert [(c["action"], c["name"]) for c in body["changes"]] == [("create", "alpha")]
    code, out, _ = kit(capsys, "apply", "--json", "-", "--yes")
    body = json.loads(out)
    assert code == 0 and body["ok"] is True
    assert body["result"] == {"created": 2, "updated": 0, "deleted": 0, "failed": 0}
    assert all(a["id"].startswith("asst_") for a in body["applied"])


def test_detailed_exitcode_gives_1_on_an_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = kit(capsys, "plan", "--detailed-exitcode", "--target", "nowhere")
    assert code == 1 and "unknown target `nowhere`" in err
    assert kit(capsys, "plan", "--target", "nowhere")[0] == ExitCode.USAGE


def test_a_partial_failure_exits_1_and_the_next_apply_finishes(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from sync.faults import FaultyTransport

    def wrap(transport):  # type: ignore[no-untyped-def]
        return FaultyTransport(transport).add("POST", "/assistants$", "400")

    monkeypatch.setattr(
        "assistant_kit.cli.plan.open_target", functools.partial(targets.open_target, wrap=wrap)
    )
    code, out, _ = kit(capsys, "apply", "--yes", "--parallelism", "1")
    assert code == ExitCode.FAILED
    assert "Apply failed: 1 created, 0 updated, 0 deleted, 1 failed:" in out
    assert 'assistant "alpha": 400' in out
    monkeypatch.undo()
    monkeypatch.chdir(project)
    code, out, _ = kit(capsys, "apply", "--yes")
    assert code == 0 and "Apply complete: 1 created" in out


def test_import_then_apply_changes_only_the_marks(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = outside(project, "Legacy Bot")
    assert kit(capsys, "import")[0] == ExitCode.USAGE  # ids or --all
    code, out, _ = kit(capsys, "import", "--all")
    assert code == 0
    assert f"({ids[0]} as `legacy-bot`)" in out
    assert (project / "assistants" / "legacy-bot.yaml").is_file()
    assert kit(capsys, "validate")[0] == 0
    code, out, _ = kit(capsys, "plan", "--json", "-", "--name", "legacy-bot")
    (change,) = json.loads(out)["changes"]
    assert change["action"] == "update" and change["marks_only"] is True
    assert kit(capsys, "apply", "--yes")[0] == 0
    assert kit(capsys, "plan", "--detailed-exitcode")[0] == 0
    code, out, _ = kit(capsys, "import", "--all")
    assert "Nothing to import" in out


@pytest.mark.parametrize(
    ("kit_yaml", "message"),
    [
        pytest.param("specs: [\n", "kit.yaml:2:1: YAML syntax error", id="syntax-error"),
        pytest.param("specs: 5\n", "kit.yaml:1:8: `specs`: must be", id="wrong-type"),
    ],
)
def test_import_with_a_broken_kit_yaml_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str], kit_yaml: str, message: str
) -> None:
    (project / "kit.yaml").write_text(kit_yaml, encoding="utf-8")
    code, _, err = kit(capsys, "import", "--all")
    assert code == ExitCode.USAGE
    assert err.startswith(f"Error: {message}") and "Traceback" not in err


def test_import_reads_the_specs_with_the_target_it_is_given(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside(project, "Legacy Bot")
    kit_yaml = project / "kit.yaml"
    kit_yaml.write_text(
        kit_yaml.read_text(encoding="utf-8") + "  other: {provider: local, vars: {who: Gamma}}\n",
        encoding="utf-8",
    )
    (project / "assistants" / "gamma.yaml").write_text(
        "name: gamma\nmodel: m\ninstructions: You are {{ who }}.\n", encoding="utf-8"
    )
    assert kit(capsys, "import", "--all")[0] == ExitCode.FAILED  # `who` is undefined for local
    code, out, _ = kit(capsys, "import", "--all", "--target", "other")
    assert code == 0 and "as `legacy-bot`" in out


def test_import_into_a_folder_that_cannot_be_made_exits_1_without_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside(project, "Legacy Bot")
    (project / "blocker").write_text("a file, not a folder", encoding="utf-8")
    code, _, err = kit(capsys, "import", "--all", "--dir", "blocker/specs")
    assert code == ExitCode.FAILED
    assert err.startswith("Error: [Errno ") and "blocker" in err and "Traceback" not in err


def test_destroy_deletes_only_managed_assistants_after_confirmation(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = outside(project, "Stranger")
    assert kit(capsys, "apply", "--yes")[0] == 0
    code, out, err = kit(capsys, "destroy")
    assert code == ExitCode.USAGE and "pass --yes" in err
    assert "Destroy: 2 to destroy." in out
    code, _, err = kit(capsys, "destroy", "--yes", "--name", "alpah")
    assert code == ExitCode.USAGE
    assert err == "Error: no spec and no managed assistant on the target named `alpah`\n"
    code, out, _ = kit(capsys, "destroy", "--yes")
    assert code == 0 and "Destroy complete: 2 deleted." in out
    code, out, _ = kit(capsys, "plan", "--json", "-")
    body = json.loads(out)
    assert body["summary"]["create"] == 2
    assert [u["id"] for u in body["unmanaged"]] == stranger
