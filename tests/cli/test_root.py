from __future__ import annotations

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
