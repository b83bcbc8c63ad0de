"""The README's Quick start: two commands for a fresh machine, the second exactly `.ci/run`'s."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_the_quick_start_is_two_one_line_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    main_job, suite = commands
    assert main_job.endswith("&& kit apply --yes && kit test")
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[local-model]"' in main_job
    assert suite.endswith("&& python -m pytest -n 2")


def test_ci_runs_the_readme_test_command_and_development_shows_the_same() -> None:
    suite = quick_start_commands()[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    skipped = ("#", "set ", "cd ")
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith(skipped)]
    assert commands == [suite]
    development = (REPO / "README.md").read_text(encoding="utf-8").split("## Development\n")[1]
    assert f"```sh\n{suite}\n```" in development.split("\n## ", 1)[0]
