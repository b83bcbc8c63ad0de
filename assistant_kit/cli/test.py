"""`kit test`: replay the conversations declared in the specs as regression tests."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistant_kit.cli import ExitCode
from assistant_kit.cli.output import INTERRUPTED_HINT, TEST_STYLES, current, json_option
from assistant_kit.cli.progress import Progress, show_retries

if TYPE_CHECKING:
    from assistant_kit.spec.project import Project
    from assistant_kit.testing.records import TestResult
    from assistant_kit.testing.runner import TestItem


@click.command()
@click.argument("paths", nargs=-1)
@click.option(
    "-k",
    "keyword",
    default=None,
    metavar="EXPR",
    help="Only tests whose id or tags "
    "match EXPR (words, and/or/not, parentheses; like pytest's -k).",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="T",
    help="Only tests with this tag (repeatable: any of them).",
)
@click.option(
    "-j",
    "--jobs",
    default=None,
    type=click.IntRange(min=1),
    metavar="N",
    help="Tests to run at the same time (default: kit.yaml test.concurrency, else 1).",
)
@click.option(
    "-x",
    "--exitfirst",
    is_flag=True,
    help="Start no further test after the first failure or error.",
)
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Run shard I of N (tests sorted by id and dealt round robin).",
)
@click.option(
    "--target",
    "-t",
    default=None,
    metavar="NAME",
    help="Target named in kit.yaml (default: kit.yaml test.target, then default_target).",
)
@click.option(
    "--ephemeral",
    is_flag=True,
    help="Test temporary assistants created from the "
    "current specs (deleted afterwards) instead of the applied ones.",
)
@click.option(
    "--timeout",
    "timeout",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per turn for tests that set no timeout (default: kit.yaml "
    "test.timeout_s, else 60).",
)
@click.option(
    "--junit",
    "junit",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write a JUnit XML report.",
)
@json_option("the report")
@click.option(
    "--html",
    "html",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write a self-contained HTML report with the transcripts.",
)
@click.option(
    "--record",
    "record",
    default=None,
    is_flag=False,
    flag_value="",
    metavar="DIR",
    help="Keep every exchange with the target, per test, in DIR (default: kit.yaml "
    "test.cassettes); secrets scrubbed.",
)
@click.option(
    "--replay",
    "replay",
    default=None,
    is_flag=False,
    flag_value="",
    metavar="DIR",
    help="Answer from the cassettes in DIR (default: kit.yaml test.cassettes): no server, "
    "no network.",
)
@click.pass_context
def test(
    ctx: click.Context,
    paths: tuple[str, ...],
    keyword: str | None,
    tags: tuple[str, ...],
    jobs: int | None,
    exitfirst: bool,
    shard: str | None,
    target: str | None,
    ephemeral: bool,
    timeout: float | None,
    junit: Path | None,
    json_path: str | None,
    html: Path | None,
    record: str | None,
    replay: str | None,
) -> None:
    """Replay the conversations declared in the specs' `tests:` as regression tests.

    PATH|NAME narrows the run to spec files or folders, assistant names, or test ids
    (`assistant::test name`). Exit status: 0 every test passed (or was skipped), 1 a test failed
    or errored, 2 the command line or the configuration cannot be used, 5 no test was selected,
    130 interrupted (Ctrl-C: the runs are cancelled, the finished tests reported).

    \b
    Examples:
      kit test                           every test, against the applied assistants
      kit test --ephemeral -j 8          the current specs, 8 tests at a time
      kit test order-desk -k "cancel"    one assistant's tests matching a word
      kit test --junit junit.xml --html report.html
      kit test --record cassettes/       then: kit test --replay cassettes/
    """
    from assistant_kit.testing.records import SuiteResult, Verdict
    from assistant_kit.testing.report import render_json, render_text, result_line, write_reports
    from assistant_kit.testing.runner import (
        RunOptions,
        Selection,
        collect_counted,
        load_test_project,
        run_suite,
    )
    from assistant_kit.testing.secrets import Scrubber, secret_env_names
    from assistant_kit.testing.selection import parse_shard

    if record is not None and replay is not None:
        raise click.UsageError("--record and --replay cannot be used together")
    spec_paths = [p for p in paths if Path(p).exists()]
    names = tuple(p for p in paths if not Path(p).exists())
    project = load_test_project(spec_paths, target)
    record_dir = _cassette_folder("--record", record, project)
    replay_dir = _cassette_folder("--replay", replay, project)
    if replay_dir is not None and not replay_dir.is_dir():
        raise click.UsageError(f"--replay {replay_dir}: no such folder")
    # a report or cassette that cannot be written is found before the tests run, not after
    json_file = Path(json_path) if json_path not in (None, "-") else None
    for option, path in (("--junit", junit), ("--json", json_file), ("--html", html)):
        if path is not None:
            _check_writable(option, path, path.parent)
    if record_dir is not None:
        _check_writable("--record", record_dir, record_dir)
    selection = Selection(
        names=names,
        keyword=keyword,
        tags=tags,
        shard=parse_shard(shard) if shard is not None else None,
    )
    items, deselected = collect_counted(project, selection)
    scrubber = Scrubber.from_env(secret_env_names(project.config))
    ui = current()
    width = max((len(i.test_id) for i in items), default=10)
    with Progress(ui, len(items), noun="test") as progress, show_retries(ui):

        def started(item: TestItem) -> None:
            progress.started(item.test_id)

        def finished(result: TestResult) -> None:
            line = scrubber.text(result_line(result, width))
            verdict = result.verdict.value
            progress.finished(result.test_id, line, verdict, TEST_STYLES.get(line.split()[0], ""))

        options = RunOptions(
            ephemeral=ephemeral,
            jobs=jobs,
            exitfirst=exitfirst,
            record=record_dir,
            replay=replay_dir,
            timeout=timeout,
            on_start=started,
            on_result=finished,
        )
        if items:
            suite = asyncio.run(run_suite(project, selection, options))
        else:
            suite = SuiteResult(tests=(), target=project.target.name, deselected=deselected)
    if items:
        # the results were shown as they finished: what did not pass, then the totals
        text = render_text(suite, scrubber=scrubber, listing=False)
        *details, totals = ["", *text.rstrip().split("\n")]
        ui.print_lines("\n".join(details), TEST_STYLES)
        ui.line(totals, "bold green" if suite.ok else "bold red")
    else:
        more = f" ({deselected} deselected)" if deselected else ""
        ui.line(f"No tests selected{more}.")
    if suite.interrupted:
        ui.line(
            f"{INTERRUPTED_HINT} {len(suite.tests)} of {len(items)} tests finished; "
            "their runs were cancelled and their threads deleted.",
            "bold yellow",
        )
    elif suite.not_run:
        ui.line(f"Stopped after the first failure (-x): {suite.not_run} not run.")
    try:
        written = write_reports(
            suite, junit=junit, json_path=json_file, html=html, scrubber=scrubber
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write the report: {exc}") from exc
    for path in written:
        ui.line(f"Wrote {path}")
    if json_path == "-":
        click.echo(render_json(suite, scrubber=scrubber), nl=False)
    if record_dir is not None and items and not suite.interrupted:
        ui.line(f"Recorded cassettes in {record_dir}")
    if suite.interrupted:
        ctx.exit(ExitCode.INTERRUPTED)
    if not items:
        ctx.exit(ExitCode.NO_TESTS)
    failed = any(t.verdict in (Verdict.FAIL, Verdict.ERROR) for t in suite.tests)
    ctx.exit(ExitCode.FAILED if failed else ExitCode.OK)


def _cassette_folder(option: str, value: str | None, project: Project) -> Path | None:
    """The folder of ``--record`` / ``--replay``: as given, or kit.yaml ``test.cassettes``
    (relative to the project) when the option comes without a value."""
    if value is None:
        return None
    if value:
        return Path(value)
    configured = project.test.get("cassettes")
    if not configured:
        raise click.UsageError(f"{option} needs a folder (or kit.yaml test.cassettes)")
    return Path(project.root) / str(configured)


def _check_writable(option: str, path: Path, folder: Path) -> None:
    """A usage error unless a file can be created in ``folder`` (made if missing); root passes
    ``os.access`` everywhere, so this tries a real file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise click.UsageError(
            f"{option} {path}: cannot write in {folder}: {exc.strerror or exc}"
        ) from exc
