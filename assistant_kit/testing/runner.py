"""The conversation-test runner: specs' ``tests:`` replayed against a target.

``run_suite(project, selection, options)`` collects the selected tests, runs them (``jobs`` at a
time, on one event loop), and returns a ``SuiteResult``; ``run_suite_sync`` is the same from
synchronous code. It needs neither click nor pytest: ``kit test`` and the pytest plugin are thin
shells over it::

    project = load_test_project(["assistants/"])
    suite = run_suite_sync(project, Selection(keyword="order"), RunOptions(jobs=8))
    print(render_text(suite))

Per test and repetition: a fresh thread; per turn the user message, a streamed run, every
``requires_action`` answered from the mocks (``conversation.play_turn``), the turn's expectations
checked; then the thread is deleted (and, in ``--ephemeral`` mode, the temporary assistants).
With ``record`` / ``replay`` every exchange of a test goes through its cassette; replay starts no
server and opens no connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from assistant_kit.api.base import AssistantClient
from assistant_kit.catalog import KIT_TEST
from assistant_kit.connect import Wrap, base_url_of, open_target
from assistant_kit.errors import ApiConnectionError, ConfigError, KitError, absorb_interrupt
from assistant_kit.spec.model import AssistantSpec, Dialect, TestCase
from assistant_kit.spec.project import Project, Target, load_project
from assistant_kit.testing.assertions import Check, CheckContext, build_expectation, evaluate_turn
from assistant_kit.testing.cassettes import (
    Cassette,
    CassetteMiss,
    CassetteRouter,
    CassetteStore,
    spec_digest,
)
from assistant_kit.testing.conversation import play_turn
from assistant_kit.testing.mocks import (
    MockError,
    MockSession,
    ToolMock,
    miss_result,
    mocks_from_spec,
)
from assistant_kit.testing.records import (
    RepetitionResult,
    SuiteResult,
    TestResult,
    TurnRecord,
    TurnResult,
    Verdict,
    make_test_id,
)
from assistant_kit.testing.secrets import Scrubber, secret_env_names
from assistant_kit.testing.selection import Shard, select
from assistant_kit.testing.session import AssistantPool, SetupError, judge_provider
from assistant_kit.testing.verdicts import (
    RepeatError,
    make_repetition,
    make_test_result,
    repeat_plan,
    skipped_test,
)

__all__ = [
    "DEFAULT_TURN_TIMEOUT",
    "RunOptions",
    "Selection",
    "TestItem",
    "collect",
    "collect_counted",
    "load_test_project",
    "run_suite",
    "run_suite_sync",
]

log = logging.getLogger("assistant_kit.testing")

#: Seconds per turn when neither the test (``timeout``) nor kit.yaml (``test.timeout_s``) says.
DEFAULT_TURN_TIMEOUT = 60.0
#: Seconds one HTTP request may take unless the target's ``timeout_s`` says otherwise.
TURN_REQUEST_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class Selection:
    """Which tests run: ``names`` (assistant names or ``assistant::test`` ids; empty = all),
    ``-k`` ``keyword``, ``--tag`` ``tags`` (any of; default kit.yaml ``test.tags`` unless tests
    are named), ``--shard``.
    Tests carrying one of kit.yaml's ``test.exclude_tags`` are not selected unless ``tags``
    names that tag (``kit test --tag strong-model``)."""

    names: tuple[str, ...] = ()
    keyword: str | None = None
    tags: tuple[str, ...] = ()
    shard: Shard | None = None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How tests run. ``jobs``: tests at a time; ``exitfirst``: start nothing after a failure;
    ``record`` / ``replay``: cassette folders; ``timeout``: seconds per turn (overrides kit.yaml,
    not a test's own ``timeout``); ``wrap``: a transport around the real one (benchmarks);
    ``client``: talk through this client instead of opening the project's target."""

    ephemeral: bool = False
    #: Tests at a time; ``None``: kit.yaml ``test.concurrency``, else 1.
    jobs: int | None = None
    exitfirst: bool = False
    record: Path | None = None
    replay: Path | None = None
    timeout: float | None = None
    database: str | Path | None = None
    wrap: Wrap | None = None
    client: AssistantClient | None = None
    on_start: Callable[[TestItem], None] | None = None
    on_result: Callable[[TestResult], None] | None = None
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class TestItem:
    """One selected test: the spec it belongs to and its case."""

    __test__ = False  # not a pytest test class

    spec: AssistantSpec
    case: TestCase

    @property
    def test_id(self) -> str:
        return make_test_id(self.spec.name, self.case.name)

    @property
    def tags(self) -> tuple[str, ...]:
        return self.case.tags


def load_test_project(
    paths: Sequence[str | os.PathLike[str]] = (),
    target: str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Project:
    """``load_project`` for ``kit test``: the target defaults to kit.yaml ``test.target`` (then
    ``default_target``), and specs are rendered for it."""
    project = load_project(paths, target, cwd=cwd, environ=environ)
    wanted = target or project.test.get("target")
    if wanted and wanted != project.target.name:
        project = load_project(paths, wanted, cwd=cwd, environ=environ)
    return project


def collect(project: Project, selection: Selection | None = None) -> list[TestItem]:
    """The selected tests, in spec order; ``ConfigError`` for a name that matches nothing, or
    ``--tag`` values none of which a test carries."""
    return collect_counted(project, selection)[0]


def collect_counted(
    project: Project, selection: Selection | None = None
) -> tuple[list[TestItem], int]:
    """``collect`` plus how many tests in scope (the named assistants' and tests', else all)
    the selection left out: pytest's "deselected"."""
    selection = selection or Selection()
    items = [TestItem(spec, case) for spec in project.specs for case in spec.tests]
    if selection.names:
        known = {i.spec.name for i in items} | {i.test_id for i in items}
        specs = {s.name for s in project.specs}
        unknown = [n for n in selection.names if n not in known and n not in specs]
        if unknown:
            raise ConfigError(
                f"no assistant or test named {unknown[0]!r}; "
                f"assistants: {', '.join(sorted(specs)) or 'none'}"
            )
        wanted = set(selection.names)
        items = [i for i in items if i.spec.name in wanted or i.test_id in wanted]
    if selection.tags:
        # tags no test carries are a typo, not an empty selection that passes in CI
        known = {t.casefold() for i in items for t in i.tags}
        if not known & {t.casefold() for t in selection.tags}:
            raise ConfigError(
                f"no test has the tag {' or '.join(map(repr, selection.tags))}; "
                f"tags: {', '.join(sorted(known)) or 'none'}"
            )
    in_scope = len(items)
    excluded = {str(t).casefold() for t in project.test.get("exclude_tags") or ()}
    # a tag asked for with --tag is wanted, even when kit.yaml excludes it by default
    excluded -= {t.casefold() for t in selection.tags}
    if excluded:
        items = [i for i in items if not excluded & {t.casefold() for t in i.tags}]
    chosen = select(
        items,
        id_of=lambda i: i.test_id,
        tags_of=lambda i: i.tags,
        keyword=selection.keyword,
        tags=selection.tags or _default_tags(project, selection),
        shard=selection.shard,
    )
    return chosen, in_scope - len(chosen)


def _default_tags(project: Project, selection: Selection) -> tuple[str, ...]:
    """kit.yaml ``test.tags``, unless tests were named explicitly."""
    if selection.names:
        return ()
    return tuple(str(t) for t in project.test.get("tags") or ())


def run_suite_sync(
    project: Project, selection: Selection | None = None, options: RunOptions | None = None
) -> SuiteResult:
    """``run_suite`` on a new event loop."""
    return asyncio.run(run_suite(project, selection, options))


async def run_suite(
    project: Project, selection: Selection | None = None, options: RunOptions | None = None
) -> SuiteResult:
    """Run the selected tests of ``project`` on its target (see the module docstring)."""
    options = options or RunOptions()
    if options.record and options.replay:
        raise ConfigError("--record and --replay cannot be used together")
    jobs = options.jobs if options.jobs is not None else int(project.test.get("concurrency") or 1)
    if jobs < 1:
        raise ConfigError(f"-j must be at least 1, got {jobs}")
    options = dataclasses.replace(options, jobs=jobs)
    items, deselected = collect_counted(project, selection)
    log.info("running %d test(s), %d at a time", len(items), jobs)
    started = time.perf_counter()
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    async with _Suite(project, options) as suite:
        results = await suite.run_all(items)
    if suite.dead is not None:
        # one error for a target nobody answers on, not one per test
        raise suite.dead
    return SuiteResult(
        interrupted=suite.interrupted,
        tests=tuple(results),
        duration_ms=(time.perf_counter() - started) * 1000,
        target=project.target.name,
        started_at=stamp,
        deselected=deselected,
        not_run=len(items) - len(results),
    )


def test_digest(spec: AssistantSpec, case: TestCase, dialect: Dialect, ephemeral: bool) -> str:
    """What a cassette is keyed by besides the test id: the rendered assistant, the test, the
    dialect and the mode (positions in the file are left out: moving a test is no change)."""
    return spec_digest(
        spec.to_payload(dialect),
        _without_positions(dataclasses.asdict(case)),
        dialect,
        "ephemeral" if ephemeral else "applied",
    )


def _without_positions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_positions(v) for k, v in value.items() if k not in ("file", "line")}
    if isinstance(value, (list, tuple)):
        return [_without_positions(v) for v in value]
    return value


class _Suite:
    """One invocation's shared state: the client, the assistants, the cassettes, the judge."""

    def __init__(self, project: Project, options: RunOptions) -> None:
        self.project = project
        self.options = options
        self.target = project.target
        # the wire spoken: the given client's, else the target's (both a name in DIALECTS)
        self.dialect: Dialect = (
            options.client.dialect if options.client is not None else self.target.dialect
        )
        self.scrubber = Scrubber.from_env(secret_env_names(project.config), options.environ)
        folder = options.record or options.replay
        self.store = CassetteStore(folder, self.scrubber) if folder else None
        self.router: CassetteRouter | None = None
        self.stack = contextlib.AsyncExitStack()
        self.client: AssistantClient | None = None
        self.pool: AssistantPool | None = None
        self.judge_clients: dict[str, AssistantClient] = {}
        self.judge_lock = asyncio.Lock()
        self.stop = False
        #: Cancelled (Ctrl-C) before every test finished.
        self.interrupted = False
        #: Set when the target refused the very first connection: the suite stops.
        self.dead: ApiConnectionError | None = None
        self.reached = False
        self.cleanups: list[asyncio.Future[None]] = []
        defaults = project.test.get("judge") or {}
        self.judges = judge_provider(defaults, self._judge_client)
        self.turn_timeout = float(
            options.timeout or project.test.get("timeout_s") or DEFAULT_TURN_TIMEOUT
        )

    async def __aenter__(self) -> _Suite:
        await self.stack.__aenter__()
        if self.options.client is not None and self.store is None:
            self.client = self.options.client
        else:
            database = self.options.database
            if database is None and self.options.ephemeral and self.target.embedded:
                # nothing applied is needed: keep the temporary state out of .kit/server.db
                # (and out of the way of other processes testing the same project)
                database = ":memory:"
            try:
                self.client = await self.stack.enter_async_context(
                    open_target(
                        self.project,
                        wrap=self._wrap,
                        timeout=self._request_timeout(self.target),
                        replay=self.options.replay is not None,
                        database=database,
                        environ=self.options.environ,
                    )
                )
            except BaseException:
                await self.stack.aclose()
                raise
        self.pool = AssistantPool(
            self.client,
            dialect=self.dialect,
            ephemeral=self.options.ephemeral,
            target_name=self.target.name,
            environ=self.options.environ,
            project=self.project.project_id,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.cleanups:
                await asyncio.gather(*self.cleanups, return_exceptions=True)
            if self.pool is not None:
                await self.pool.close()
        finally:
            await self.stack.__aexit__(*exc)  # type: ignore[arg-type]

    @staticmethod
    def _request_timeout(target: Target) -> float:
        # a turn's own `timeout` bounds the whole turn; one request (a streamed run) may take long
        return float(target.options.get("timeout_s") or TURN_REQUEST_TIMEOUT)

    def _wrap(self, inner: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
        transport = inner
        if transport is not None and self.options.wrap is not None:
            transport = self.options.wrap(transport)
        if self.store is not None:
            self.router = CassetteRouter(fallback=transport if self.options.record else None)
            return self.router
        if transport is None:
            raise ConfigError("replay needs a cassette folder")
        return transport

    async def _judge_client(self, target: str | None) -> AssistantClient:
        assert self.client is not None
        if target is None or target == self.target.name:
            return self.client
        if self.store is not None:
            raise SetupError(
                f"a judge on another target (`{target}`) is not recorded or replayed; "
                "judge on the test's target to use --record / --replay"
            )
        if target not in self.project.targets:
            raise SetupError(f"the judge's target `{target}` is not defined in kit.yaml")
        async with self.judge_lock:
            if target not in self.judge_clients:
                client = await self.stack.enter_async_context(
                    open_target(
                        self.project,
                        self.project.targets[target],
                        timeout=self._request_timeout(self.project.targets[target]),
                        database=self.options.database,
                        environ=self.options.environ,
                    )
                )
                self.judge_clients[target] = client
        return self.judge_clients[target]

    # -- scheduling ---------------------------------------------------------------------------

    async def run_all(self, items: list[TestItem]) -> list[TestResult]:
        gate = asyncio.Semaphore(self.options.jobs or 1)
        results: dict[int, TestResult] = {}

        async def one(i: int, item: TestItem) -> None:
            async with gate:
                if self.stop:
                    return
                if self.options.on_start is not None:
                    self.options.on_start(item)
                result = await self.run_test(item)
                if self.dead is not None:
                    return
                results[i] = result
                if self.options.on_result is not None:
                    self.options.on_result(result)
                if self.options.exitfirst and result.verdict in (Verdict.FAIL, Verdict.ERROR):
                    self.stop = True

        tasks = [asyncio.ensure_future(one(i, item)) for i, item in enumerate(items)]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            # gather gives up at the first cancelled test; the others still have runs to cancel
            # and threads to delete before the client closes
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            # Ctrl-C (asyncio.run cancels the main task): every test has cancelled its run and
            # deleted its thread by now; report what finished instead of losing it
            if not absorb_interrupt():
                raise  # cancelled from elsewhere as well: not ours to swallow
            self.interrupted = True
        return [results[i] for i in sorted(results)]

    # -- one test -----------------------------------------------------------------------------

    async def run_test(self, item: TestItem) -> TestResult:
        case = item.case
        file, line = case.file or None, case.line or None
        if case.skip:
            return skipped_test(
                item.test_id,
                case.skip,
                repeat=case.repeat,
                min_pass=case.min_pass,
                tags=case.tags,
                file=file,
                line=line,
            )
        started = time.perf_counter()
        try:
            n, k = repeat_plan(case.repeat, case.min_pass)
            test_mocks = mocks_from_spec(case.mocks)
            turn_mocks = [mocks_from_spec(turn.mocks) for turn in case.turns]
            cassette = self._cassette(item)
        except (RepeatError, MockError, CassetteMiss) as exc:
            rep = make_repetition(0, [], error=str(exc))
            return make_test_result(
                item.test_id,
                [rep],
                repeat=case.repeat,
                min_pass=1,
                tags=case.tags,
                file=file,
                line=line,
            )
        checks = [
            [
                build_expectation(e.kind, e.value, e.negate, where=f"{case.file}:{e.line}")
                for e in turn.expect
            ]
            for turn in case.turns
        ]
        reps = []
        for r in range(n):
            reps.append(
                await self.run_repetition(item, r, checks, test_mocks, turn_mocks, cassette)
            )
        if cassette is not None and self.options.record and self.store is not None:
            self.store.save(cassette)
        return make_test_result(
            item.test_id,
            reps,
            repeat=n,
            min_pass=k,
            duration_ms=(time.perf_counter() - started) * 1000,
            tags=case.tags,
            file=file,
            line=line,
        )

    def _cassette(self, item: TestItem) -> Cassette | None:
        if self.store is None:
            return None
        digest = test_digest(item.spec, item.case, self.dialect, self.options.ephemeral)
        if self.options.replay:
            return self.store.load(item.test_id, digest)
        return self.store.new(item.test_id, digest)

    @contextlib.contextmanager
    def _route(self, cassette: Cassette | None, repetition: int) -> Iterator[Callable[[Any], None]]:
        """Send this task's requests to the cassette; yields ``mark(slot)``."""
        if cassette is None or self.router is None:
            yield lambda _slot: None
            return
        if self.options.replay:
            transport: Any = cassette.replayer(repetition=repetition)
        else:
            assert self.router.fallback is not None
            transport = cassette.recorder(self.router.fallback, repetition=repetition)
        with self.router.use(transport):
            yield transport.at_turn

    async def run_repetition(
        self,
        item: TestItem,
        r: int,
        checks: list[list[Check]],
        test_mocks: Mapping[str, ToolMock],
        turn_mocks: list[dict[str, ToolMock]],
        cassette: Cassette | None,
    ) -> RepetitionResult:
        assert self.client is not None and self.pool is not None
        client, case = self.client, item.case
        started = time.perf_counter()
        per_rep = cassette is not None  # a cassette holds everything its repetition needs
        timeout = float(case.timeout or self.turn_timeout)
        spec_dir = str(Path(case.file or item.spec.file or ".").resolve().parent)
        import_paths = (spec_dir, str(self.project.root))
        results: list[TurnResult] = []
        thread_id: str | None = None
        assistant_id: str | None = None
        error: str | None = None
        with self._route(cassette, r) as mark:
            mark("setup")
            try:
                assistant_id = await self.pool.resolve(item.spec, cache=not per_rep)
                self.reached = True
            except ApiConnectionError as exc:
                error = self._unreachable(exc)
                if not self.reached and self.options.replay is None:
                    self.dead, self.stop = exc, True
            except KitError as exc:
                error = str(exc) if isinstance(exc, SetupError) else f"{type(exc).__name__}: {exc}"
            if assistant_id is not None:
                mocks = MockSession(test_mocks)
                history: list[TurnRecord] = []
                try:
                    for i, turn in enumerate(case.turns):
                        mark(i)
                        outcome = await play_turn(
                            client,
                            thread_id,
                            assistant_id,
                            i,
                            turn.user,
                            mocks=mocks,
                            turn_mocks=turn_mocks[i],
                            timeout=timeout,
                            thread_metadata={KIT_TEST: item.test_id[:512]},
                        )
                        thread_id = outcome.thread_id
                        record = outcome.record
                        if outcome.miss is not None:
                            found: tuple[Any, ...] = (miss_result(outcome.miss),)
                        elif record.errors:
                            found = ()
                        else:
                            ctx = CheckContext(
                                history=tuple(history),
                                judges=self.judges,
                                import_paths=import_paths,
                            )
                            found = await evaluate_turn(checks[i], record, ctx)
                        results.append(TurnResult(record, found))
                        history.append(record)
                        if outcome.miss is not None or record.errors:
                            break
                except asyncio.CancelledError:
                    # Ctrl-C: the turn cancelled its run (and deleted a thread it created);
                    # the thread of the earlier turns goes too
                    await self._delete_thread(thread_id)
                    raise
            duration_ms = (time.perf_counter() - started) * 1000
            mark("teardown")
            if per_rep:
                # a cassette holds its teardown: do it now, in order
                await self._delete_thread(thread_id)
                if assistant_id is not None and self.options.ephemeral:
                    await self.pool.delete(assistant_id)
            elif thread_id is not None:
                # off the critical path: the next test starts while this thread is deleted
                self.cleanups.append(asyncio.ensure_future(self._delete_thread(thread_id)))
        return make_repetition(
            r,
            results,
            duration_ms=duration_ms,
            error=error,
            thread_id=thread_id,
        )

    def _unreachable(self, exc: ApiConnectionError) -> str:
        where = "embedded server" if self.target.embedded else base_url_of(self.target)
        return (
            f"cannot reach target `{self.target.name}` ({where}): {exc.message}; "
            "is it running, and is kit.yaml's base_url right?"
        )

    async def _delete_thread(self, thread_id: str | None) -> None:
        if thread_id is None or self.client is None:
            return
        with contextlib.suppress(KitError):
            await self.client.delete_thread(thread_id)
