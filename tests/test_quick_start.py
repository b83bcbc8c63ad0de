"""The README's Quick start: install, the first loop from `kit init` in an empty folder, the test
suite (exactly `.ci/run`'s), and the GitHub Actions workflow kept in examples/."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import yaml

from assistant_kit.cli import cli
from assistant_kit.cli.init import NEXT

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "examples" / "github-actions.yml"


def quick_start() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]


def quick_start_commands() -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", quick_start(), re.S)]


def test_the_quick_start_installs_then_goes_round_the_loop_from_an_empty_folder() -> None:
    commands = quick_start_commands()
    assert len(commands) == 3 and all("\n" not in c for c in commands)
    install, first_loop, suite = commands
    assert install.endswith('CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[local-model]"')
    # an empty folder, then exactly what `kit init` says to run next
    assert first_loop == f"mkdir ../my-assistants && cd ../my-assistants && kit init && {NEXT}"
    assert suite.endswith("&& python -m pytest -n 2")


def test_ci_runs_the_readme_test_command_and_development_shows_the_same() -> None:
    suite = quick_start_commands()[2]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    skipped = ("#", "set ", "cd ")
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith(skipped)]
    assert commands == [suite]
    development = (REPO / "README.md").read_text(encoding="utf-8").split("## Development\n")[1]
    assert f"```sh\n{suite}\n```" in development.split("\n## ", 1)[0]


def test_the_github_actions_workflow_is_the_readme_one_and_runs_the_loop() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert f"```yaml\n{text}```" in quick_start()
    workflow = yaml.safe_load(text)
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    cache = next(s for s in steps if str(s.get("uses", "")).startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.cache/pip"  # keeps the compiled llama-cpp-python wheel
    runs = [s["run"] for s in steps if "run" in s]
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in runs[0]
    kit_commands = [r for r in runs if r.startswith("kit ")]
    # the loop the README and `kit init` give, CI reports added to `kit test`
    loop = [c.strip() for c in NEXT.split("&&") if not c.strip().startswith("kit chat")]
    assert [c.split(" --junit")[0] for c in kit_commands] == loop
    for command in kit_commands:  # each one parses with the kit's own options
        name, *args = shlex.split(command)[1:]
        sub = cli.get_command(click.Context(cli), name)
        assert sub is not None
        sub.make_context(name, list(args))
