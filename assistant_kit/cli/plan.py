"""`kit plan`, `kit apply`, `kit import`, `kit destroy`: sync the specs to a target."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assistant_kit.cli import ExitCode
from assistant_kit.cli.output import (
    PLAN_STYLES,
    current,
    error_text,
    json_option,
    plural,
    write_json,
)
from assistant_kit.cli.progress import Progress, show_retries
from assistant_kit.connect import open_target
from assistant_kit.errors import ConfigError, KitError
from assistant_kit.spec.project import Project, find_kit_file, load_project, read_config
from assistant_kit.sync.apply import DEFAULT_PARALLELISM, ApplyReport, Outcome, apply_plan
from assistant_kit.sync.diff import managed_name
from assistant_kit.sync.importer import import_assistants
from assistant_kit.sync.plan import Plan, build_plan, check_names, destroy_plan, list_remote
from assistant_kit.sync.render import (
    apply_json,
    plan_json,
    render_outcome,
    render_plan,
    render_report,
)

F = TypeVar("F", bound=Callable[..., Any])


def target_option(fn: F) -> F:
    return click.option(
        "--target",
        "-t",
        metavar="NAME",
        help="Target named in kit.yaml (default: kit.yaml's default_target).",
    )(fn)


def name_option(fn: F) -> F:
    return click.option(
        "--name",
        "names",
        multiple=True,
        metavar="NAME",
        help="Only this assistant (repeatable).",
    )(fn)


def _confirm(question: str, yes: bool) -> bool:
    """True to go ahead: --yes, or a "yes" typed on a terminal; refuses without a terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(
            "refusing to change the target without confirmation: stdin is not a terminal; "
            "pass --yes to carry out the plan shown"
        )
    # asyncio.run's own Ctrl-C handler would only cancel the task blocked in this prompt: the
    # plain one makes Ctrl-C answer "no" at once
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return click.confirm(question, default=False, err=True)
    finally:
        signal.signal(signal.SIGINT, previous)


@click.command()
@target_option
@name_option
@click.option("--prune", is_flag=True, help="Also delete managed assistants that have no spec.")
@click.option("--diff", "show_diff", is_flag=True, help="Show instructions as a unified diff.")
@json_option("the plan")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to change, 2 when there is, 1 on an error.",
)
def plan(
    target: str | None,
    names: tuple[str, ...],
    prune: bool,
    show_diff: bool,
    json_path: str | None,
    detailed_exitcode: bool,
) -> int:
    """Show what `kit apply` would change on the target, without changing anything.

    Remote assistants are matched to specs by their kit_name mark; assistants of other
    projects (kit.yaml `project`) and those the kit did not create are never touched
    (`kit import` adopts the latter).

    \b
    Examples:
      kit plan                            the default target
      kit plan --target staging --diff    with instructions as a unified diff
      kit plan --detailed-exitcode        exit 2 when changes are pending (for CI)
    """
    try:
        project = load_project((), target)
        with show_retries(current()):
            result = asyncio.run(_plan(project, names, prune))
    except KitError as exc:
        if not detailed_exitcode:
            raise
        current().error(error_text(exc))
        return ExitCode.FAILED
    current().print_lines(render_plan(result, diff=show_diff), PLAN_STYLES)
    if json_path is not None:
        write_json(plan_json(result), json_path)
    if result.conflicts:
        return ExitCode.FAILED
    if detailed_exitcode and result.has_changes:
        return 2
    return ExitCode.OK


async def _plan(project: Project, names: tuple[str, ...], prune: bool) -> Plan:
    async with open_target(project) as client:
        return await build_plan(
            client,
            project.specs,
            target=project.target.name,
            dialect=project.target.dialect,
            names=names,
            prune=prune,
            project=project.project_id,
        )


@click.command()
@target_option
@name_option
@click.option("--prune", is_flag=True, help="Also delete managed assistants that have no spec.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.option("--diff", "show_diff", is_flag=True, help="Show instructions as a unified diff.")
@json_option("the plan and the result")
@click.option(
    "--parallelism",
    default=DEFAULT_PARALLELISM,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Changes carried out at once.",
)
def apply(
    target: str | None,
    names: tuple[str, ...],
    prune: bool,
    yes: bool,
    show_diff: bool,
    json_path: str | None,
    parallelism: int,
) -> int:
    """Make the target match the specs: show the plan, ask, then create, update, delete.

    Failed calls (429, 5xx, timeouts, lost connections) are retried with backoff; a create
    is never repeated before the target was checked for it. If some changes fail, the others
    still happen; run `kit apply` again to finish.

    \b
    Examples:
      kit apply                 asks before changing anything
      kit apply --yes --prune   no question; delete managed assistants without a spec
    """
    project = load_project((), target)
    with show_retries(current()):
        result, report = asyncio.run(
            _apply(project, names, prune, yes, show_diff, json_path, parallelism)
        )
    if json_path is not None:
        write_json(apply_json(result, report), json_path)
    if report is not None and report.interrupted:
        return ExitCode.INTERRUPTED
    if report is not None and not report.ok:
        return ExitCode.FAILED
    return ExitCode.OK


async def _apply(
    project: Project,
    names: tuple[str, ...],
    prune: bool,
    yes: bool,
    show_diff: bool,
    json_path: str | None,
    parallelism: int,
) -> tuple[Plan, ApplyReport | None]:
    async with open_target(project) as client:
        result = await build_plan(
            client,
            project.specs,
            target=project.target.name,
            dialect=project.target.dialect,
            names=names,
            prune=prune,
            project=project.project_id,
        )
        return result, await _carry_out(client, result, yes, show_diff, json_path, parallelism)


async def _carry_out(
    client: Any,
    result: Plan,
    yes: bool,
    show_diff: bool,
    json_path: str | None,
    parallelism: int,
    verb: str = "Plan",
) -> ApplyReport | None:
    ui = current()
    ui.print_lines(render_plan(result, diff=show_diff, verb=verb), PLAN_STYLES)
    result.check()
    if not result.has_changes:
        return None
    question = "Delete these assistants?" if result.destroy else "Apply these changes?"
    if not _confirm(question, yes):
        raise click.Abort()
    ui.line("")
    with Progress(ui, len(result.pending), noun="change") as progress:

        def show(outcome: Outcome) -> None:
            line = render_outcome(outcome)
            kind = "failed" if not outcome.ok else "done"
            style = PLAN_STYLES.get(line.strip()[:1], "")
            progress.finished(outcome.change.name, line, kind, style)

        for change in result.pending:
            progress.started(change.name)
        report = await apply_plan(client, result, parallelism=parallelism, on_outcome=show)
    ui.line("")
    ui.print_lines(render_report(report), PLAN_STYLES)
    return report


def _spec_folder(cwd: Path, target: str | None) -> tuple[Path, Project | None]:
    """Where imported specs go (the project's first spec folder), and the project when that
    folder exists (its spec names are taken)."""
    config, root = read_config(find_kit_file(cwd), cwd.resolve())
    folder = root / str(config["specs"][0])
    if not folder.is_dir():
        return folder, None
    return folder, load_project((), target)


@click.command("import")
@click.argument("ids", nargs=-1)
@click.option("--all", "import_all", is_flag=True, help="Import every unmanaged assistant.")
@target_option
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the spec files (default: the project's first spec folder).",
)
@click.option("--force", is_flag=True, help="Overwrite spec files that already exist.")
def import_(
    ids: tuple[str, ...], import_all: bool, target: str | None, folder: Path | None, force: bool
) -> int:
    """Write spec files for assistants on the target that the kit does not manage yet.

    Each imported assistant gets the kit_name mark, so the next `kit apply` adopts it and
    changes nothing but the marks. Plug-in tokens are not imported: the spec names the
    environment variable apply reads them from.

    \b
    Examples:
      kit import --all                    every unmanaged assistant
      kit import asst_123 --target prod   one assistant
    """
    if bool(ids) == import_all:
        raise click.UsageError("give assistant ids or --all (not both)")
    default_folder, project = _spec_folder(Path.cwd(), target)
    taken = {s.name for s in project.specs} if project is not None else set()
    out = folder or default_folder
    with show_retries(current()):
        imported = asyncio.run(_import(project, target, out, ids, taken, force))
    if not imported:
        click.echo("Nothing to import: every assistant on the target is managed by the kit.")
        return ExitCode.OK
    for item in imported:
        click.echo(f"  + {item.path}  ({item.id} as `{item.name}`)")
        for note in item.notes:
            click.echo(f"      note: {note}")
    click.echo(f"Imported {plural(len(imported), 'assistant')}. Next: kit plan")
    return ExitCode.OK


async def _import(
    project: Project | None,
    target: str | None,
    folder: Path,
    ids: tuple[str, ...],
    taken: set[str],
    force: bool,
) -> list[Any]:
    if project is None:
        # no specs yet: the project file (or its defaults) is all that is needed
        folder.mkdir(parents=True, exist_ok=True)
        project = load_project((), target)
    async with open_target(project) as client:
        return await import_assistants(
            client,
            folder,
            dialect=project.target.dialect,
            ids=ids,
            taken=taken,
            force=force,
            project=project.project_id,
        )


@click.command()
@target_option
@name_option
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@json_option("the plan and the result")
@click.option(
    "--parallelism",
    default=DEFAULT_PARALLELISM,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Deletions carried out at once.",
)
def destroy(
    target: str | None, names: tuple[str, ...], yes: bool, json_path: str | None, parallelism: int
) -> int:
    """Delete the target's assistants that the kit manages for this project's specs.

    Only this project's assistants marked with the kit_name of a spec here (or of a --name)
    are deleted; nothing else on the target is touched.

    \b
    Examples:
      kit destroy                          asks before deleting anything
      kit destroy --name old-bot --yes     one assistant, no question
    """
    project = load_project((), target)
    with show_retries(current()):
        result, report = asyncio.run(_destroy(project, names, yes, json_path, parallelism))
    if json_path is not None:
        write_json(apply_json(result, report), json_path)
    if report is not None and report.interrupted:
        return ExitCode.INTERRUPTED
    if report is not None and not report.ok:
        return ExitCode.FAILED
    return ExitCode.OK


async def _destroy(
    project: Project, names: tuple[str, ...], yes: bool, json_path: str | None, parallelism: int
) -> tuple[Plan, ApplyReport | None]:
    async with open_target(project) as client:
        remotes, calls = await list_remote(client)
        if names:  # a mistyped --name is an error, not a silent "nothing to destroy"
            managed = (managed_name(r, project.project_id) for r in remotes)
            check_names(names, project.specs, filter(None, managed))
        chosen = set(names) or {s.name for s in project.specs}
        result = destroy_plan(
            remotes,
            chosen,
            target=project.target.name,
            dialect=project.target.dialect,
            list_calls=calls,
            project=project.project_id,
        )
        report = await _carry_out(
            client, result, yes, False, json_path, parallelism, verb="Destroy"
        )
        return result, report
