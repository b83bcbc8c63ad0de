"""`kit test`: replay the conversations declared in the specs as regression tests."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from assistant_kit.cli import ExitCode
from assistant_kit.cli.output import INTERRUPTED_HINT, human_echo, json_option

if TYPE_CHECKING:
    from assistant_kit.spec.project import Project

_RESULT_MARK = {"pass": "✓", "fail": "✗", "error": "!", "skip": "-"}


class ProgressLine:
    """One line on a terminal, rewritten as tests start and finish: a bar, counts, the test."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.done = 0
        self.counts = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
        self.running: list[str] = []
        self.started = time.perf_counter()
        self.shown = False

    def start(self, item: object) -> None:
        self.running.append(str(getattr(item, "test_id", item)))
        self.draw()

    def finish(self, result: object) -> None:
        test_id = str(getattr(result, "test_id", ""))
        if test_id in self.running:
            self.running.remove(test_id)
        self.done += 1
        verdict = getattr(getattr(result, "verdict", None), "value", "error")
        self.counts[verdict] = self.counts.get(verdict, 0) + 1
        self.draw()

    def draw(self) -> None:
        width = max(40, shutil.get_terminal_size((80, 24)).columns) - 1
        filled = int(20 * self.done / self.total) if self.total else 20
        bar = "#" * filled + "." * (20 - filled)
        counts = " ".join(f"{_RESULT_MARK[k]}{v}" for k, v in self.counts.items() if v)
        took = time.perf_counter() - self.started
        head = f"[{bar}] {self.done}/{self.total} {counts} {took:.1f}s"
        current = self.running[-1] if self.running else ""
        line = f"{head}  {current}" if current else head
        self.stream.write("\r" + line[:width].ljust(width))
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            width = max(40, shutil.get_terminal_size((80, 24)).columns) - 1
            self.stream.write("\r" + " " * width + "\r")
            self.stream.flush()


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
    from assistant_kit.testing.report import render_json, render_text, write_reports
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
    echo = human_echo(json_path)
    scrubber = Scrubber.from_env(secret_env_names(project.config))
    progress = ProgressLine(len(items), sys.stderr) if sys.stderr.isatty() and items else None
    options = RunOptions(
        ephemeral=ephemeral,
        jobs=jobs,
        exitfirst=exitfirst,
        record=record_dir,
        replay=replay_dir,
        timeout=timeout,
        on_start=progress.start if progress else None,
        on_result=progress.finish if progress else None,
    )
    if items:
        try:
            suite = asyncio.run(run_suite(project, selection, options))
        finally:
            if progress is not None:
                progress.clear()
        echo(render_text(suite, scrubber=scrubber), nl=False)
    else:
        suite = SuiteResult(tests=(), target=project.target.name, deselected=deselected)
        more = f" ({deselected} deselected)" if deselected else ""
        echo(f"No tests selected{more}.")
    if suite.interrupted:
        echo(
            f"{INTERRUPTED_HINT} {len(suite.tests)} of {len(items)} tests finished; "
            "their runs were cancelled and their threads deleted."
        )
    elif suite.not_run:
        echo(f"Stopped after the first failure (-x): {suite.not_run} not run.")
    try:
        written = write_reports(
            suite, junit=junit, json_path=json_file, html=html, scrubber=scrubber
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write the report: {exc}") from exc
    for path in written:
        echo(f"Wrote {path}")
    if json_path == "-":
        click.echo(render_json(suite, scrubber=scrubber), nl=False)
    if record_dir is not None and items and not suite.interrupted:
        echo(f"Recorded cassettes in {record_dir}")
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
