"""`kit validate`: check specs without touching any target."""

from __future__ import annotations

import os
from pathlib import Path

import click

from assistant_kit.cli import ExitCode
from assistant_kit.cli.output import echo_json, issue_dict, plural
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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Print the result as text or as JSON on stdout.",
)
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...], target: str | None, fmt: str) -> None:
    """Check specs: YAML, the JSON Schema, templates and the APIs' limits.

    Every problem in every file is printed at once as file:line:col: message.
    Exit status: 0 all valid, 1 problems found, 2 bad options or kit.yaml.

    \b
    Examples:
      kit validate                              every spec of the project
      kit validate assistants/art-maestro.yaml  one file (or folder)
      kit validate --target dashscope           render with that target's vars
      kit validate --format json                the result as JSON
    """
    try:
        project = load_project(paths, target, jobs=os.cpu_count() or 1)
    except SpecError as exc:
        if fmt != "json":
            raise
        echo_json(
            {
                "ok": False,
                "target": target,
                "assistants": [],
                "issues": [issue_dict(i) for i in exc.issues],
            }
        )
        ctx.exit(ExitCode.FAILED)
    if fmt == "json":
        echo_json(
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
            }
        )
        return
    if not project.specs:
        click.echo("No spec files found.")
        return
    width = max(len(spec.name) for spec in project.specs)
    for spec in project.specs:
        click.echo(f"ok  {spec.name:<{width}}  {spec.file}  ({plural(len(spec.tests), 'test')})")
    click.echo(f"{plural(len(project.specs), 'assistant')} valid (target: {project.target.name}).")
