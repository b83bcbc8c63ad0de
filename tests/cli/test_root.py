from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant_kit import __version__
from assistant_kit.cli import COMMANDS, ExitCode, cli, main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == ExitCode.OK
    assert capsys.readouterr().out == f"kit, version {__version__}\n"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == ExitCode.USAGE
    assert "No such command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_examples(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], catch_exceptions=False)
    assert result.exit_code == ExitCode.OK
    assert "\nExamples:\n" in result.output.replace("  Examples:", "Examples:")
    assert f"  kit {name}" in result.output


def test_shell_completion_is_click_s_as_the_readme_says() -> None:
    env = {**os.environ, "_KIT_COMPLETE": "bash_complete", "COMP_WORDS": "kit va"}
    env["COMP_CWORD"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", "from assistant_kit.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == "plain,validate\n"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert 'eval "$(_KIT_COMPLETE=bash_source kit)"' in readme
