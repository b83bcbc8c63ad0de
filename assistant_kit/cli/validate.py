"""`kit validate`: check specs without touching any target."""

from __future__ import annotations

import os
from pathlib import Path

import click

from assistant_kit.cli import ExitCode
from assistant_kit.cli.output import configure, current, issue_dict, json_option, plural, write_json
from assistant_kit.errors import SpecError
from assistant_kit.spec.project import load_project


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--target",
    "-t",
    metavar="NAME",
    help="Target whose vars render the instructions (default: kit.yaml's default_target).",
)
@json_option("the result")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default=None,
    hidden=True,  # deprecated: `--format json` is `--json -`
)
@click.pass_context
def validate(
    ctx: click.Context,
    paths: tuple[Path, ...],
    target: str | None,
    json_path: str | None,
    fmt: str | None,
) -> None:
    """Check specs: YAML, the JSON Schema, templates and the APIs' limits, plus what the
    project decides: model names the embedded server cannot route, judge checks without a
    judge model, python checks that do not import, scripted model scripts that do not load.

    Every problem in every file is printed at once as file:line:col: message.
    Exit status: 0 all valid, 1 problems found, 2 bad options or kit.yaml.

    \b
    Examples:
      kit validate                              every spec of the project
      kit validate assistants/art-maestro.yaml  one file (or folder)
      kit validate --target dashscope           render with that target's vars
      kit validate --json -                     the result as JSON on stdout
    """
    # imported here: the other commands never need them (the routes read server config)
    from assistant_kit.connect import model_route_issues
    from assistant_kit.testing.static import static_test_issues

    if fmt == "json" and json_path is None:
        json_path = "-"
        configure(text_on_stderr=True)
    ui = current()
    try:
        project = load_project(paths, target, jobs=os.cpu_count() or 1)
        # what needs the whole project: model routes, judge config, python checks that import
        static = [*model_route_issues(project), *static_test_issues(project)]
        if static:
            raise SpecError(static)
    except SpecError as exc:
        if json_path is None:
            raise
        if json_path != "-":
            for issue in exc.issues:
                ui.line(str(issue), err=True)
        write_json(
            {
                "ok": False,
                "target": target,
                "assistants": [],
                "issues": [issue_dict(i) for i in exc.issues],
            },
            json_path,
        )
        ctx.exit(ExitCode.FAILED)
    if json_path is not None:
        write_json(
            {
                "ok": True,
                "target": project.target.name,
                "assistants": [
                    {
                        "name": spec.name,
                        "file": spec.file,
                        "line": spec.line,
                        "tests": len(spec.tests),
                        "digest": spec.digest(project.target.dialect),
                    }
                    for spec in project.specs
                ],
                "issues": [],
            },
            json_path,
        )
        if json_path == "-":
            return
    stale = stale_schemas(project.root)
    if stale:
        click.echo(
            f"note: {', '.join(stale)} differ from the installed kit's schemas; "
            "`kit init --schemas` refreshes them",
            err=True,
        )
    if not project.specs:
        ui.line("No spec files found.")
        return
    width = max(len(spec.name) for spec in project.specs)
    for spec in project.specs:
        tests = plural(len(spec.tests), "test")
        ui.line(f"ok  {spec.name:<{width}}  {spec.file}  ({tests})", "green")
    ui.line(f"{plural(len(project.specs), 'assistant')} valid (target: {project.target.name}).")


def stale_schemas(root: Path) -> list[str]:
    """The project's copies under schemas/ (written by `kit init`) that are not the installed
    kit's schemas any more: an editor would show the old rules."""
    from assistant_kit.spec.validate import SCHEMA_DIR

    stale = []
    for installed in sorted(SCHEMA_DIR.glob("*.schema.json")):
        copy = root / "schemas" / installed.name
        try:
            if copy.read_bytes() != installed.read_bytes():
                stale.append(f"schemas/{installed.name}")
        except OSError:
            continue  # no copy: nothing to go stale
    return stale
