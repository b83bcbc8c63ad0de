"""The run engine: one asyncio task per run, every status change a conditional update.

::

    engine = RunEngine(store, router, tools={"code_interpreter": CodeInterpreterTool()})
    await engine.start()                     # reaper (resume / finish what a crash left) + sweeper
    engine.create_run(run)                   # a queued RunRecord (routes.runs.build_run)
    async for batch in engine.event_batches(run.id, after=0): ...   # the persisted event log
    await engine.stop()

Statuses: ``queued -> in_progress -> requires_action | completed | failed | incomplete``;
``cancelling -> cancelled``; ``expired``. Each transition is ``UPDATE runs ... WHERE status IN
(...)`` in one transaction with the events that announce it, so a cancel, an expiry and the run's
own task never both win. A thread has at most one active run (queued, in_progress,
requires_action, cancelling). The sweeper expires runs past ``expires_at`` (also those waiting for
tool outputs); on start-up the reaper resumes queued and in_progress runs (an in_progress model
call that a crash cut off is marked failed/incomplete and made again; built-in tool calls that had
started are answered to the model as interrupted, never run twice), finishes cancelling ones, and
leaves requires_action runs waiting for outputs until they expire.

Each turn of a run's loop is one ``ModelCall`` (``model_call.py``), which calls the model through
the ``ModelRouter``; function calls stop the run in ``requires_action``, built-in tools run
in-server, and after ``max_model_calls`` calls the model is asked once more with
``tool_choice: none``. The engine reaches the store only through ``Store`` and its ``Tx``; the
start-up reaper runs in the process that wins ``Store.claim_reaper()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant_kit.errors import ApiError
from assistant_kit.server.ids import now_ms
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.runs.history import HistoryCache
from assistant_kit.server.runs.model_call import CallConfig, ModelCall
from assistant_kit.server.services import NotFound, ThreadBusy
from assistant_kit.server.store.base import Store, Tx
from assistant_kit.server.store.records import (
    ACTIVE,
    STREAM_END,
    Event,
    EventEntry,
    MessageRecord,
    RunRecord,
    ThreadRecord,
    record_data,
)
from assistant_kit.server.tools.base import SaveFile
from assistant_kit.server.tools.runner import Tools

log = logging.getLogger("assistant_kit.server.engine")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Limits of the engine (``ServerConfig`` carries them)."""

    #: Seconds from creation until a run that has not finished expires.
    run_expiry_s: float = 600.0
    #: Model calls per run before the last one is made with ``tool_choice: none``.
    max_model_calls: int = 25
    #: How often the sweeper looks for expired runs (seconds).
    sweep_interval_s: float = 0.5
    #: Seconds the event log of a finished run is kept (streams of it are long over by then).
    event_retention_s: float = 3600.0
    #: On start-up, resume the queued and in_progress runs a crash left (``kit serve``); when
    #: False they are cancelled instead: the embedded server of a ``kit`` command that is gone
    #: (Ctrl-C, a closed terminal) has nobody waiting for them.
    resume_on_start: bool = True


class RunEngine:
    """Creates, drives, cancels, expires and resumes runs over one ``Store``."""

    def __init__(
        self,
        store: Store,
        router: ModelRouter | None = None,
        tools: Tools | None = None,
        settings: EngineSettings | None = None,
        save_file: SaveFile | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or EngineSettings()
        self.calls = CallConfig(
            router=router,
            tools=tools if tools is not None else {},
            max_model_calls=self.settings.max_model_calls,
            save_file=save_file,
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Runs this engine started a task for and has not yet seen end (see ``fail_orphans``).
        self._driven: set[str] = set()
        self._cancel_reason: dict[str, str] = {}
        self._signals: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Run the reaper once, then keep the expiry sweeper going."""
        self._stopping = False
        self.sweep()
        if self.store.claim_reaper():
            self.reap()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="run-sweeper")

    async def stop(self) -> None:
        """Stop every task; runs stay as stored and the next start resumes them."""
        self._stopping = True
        tasks = list(self._tasks.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._sweeper = None
        for signal in self._signals.values():
            signal.set()
        self._signals.clear()
        self.store.release_reaper()

    def reap(self) -> None:
        """Finish or resume what a crash (or a stop) left behind."""
        for run in self.store.runs_in(("cancelling",)):
            self.finish(run.id, "cancelled")
        if not self.settings.resume_on_start:
            for run in self.store.runs_in(("queued", "in_progress")):
                if self.transition(run.id, "cancelling", when=("queued", "in_progress")):
                    self._abandon_partial(run)
                    self.finish(run.id, "cancelled")
            return
        for run in self.store.runs_in(("in_progress",)):
            self._abandon_partial(run)
            self.spawn(run.id)
        for run in self.store.runs_in(("queued",)):
            self.spawn(run.id)

    def sweep(self) -> int:
        """Expire every active run past its ``expires_at``; returns how many."""
        expired = 0
        for run in self.store.runs_in(ACTIVE, expires_before=now_ms()):
            if self.finish(run.id, "expired"):
                expired += 1
        return expired

    def fail_orphans(self) -> int:
        """Fail queued / in_progress runs whose task ended without ending them: the store
        refused the run's last writes (a full disk, a read-only file). Runs on every sweep, so
        such a run ends ``failed`` as soon as the store takes writes again; never at start-up,
        where the reaper resumes these runs instead. Only runs this engine drove: another
        process on the same file (``kit serve`` beside a ``local`` target) drives its own."""
        failed = 0
        error = {
            "code": "server_error",
            "message": "The run stopped: the server could not write it to its database.",
        }
        live = {run.id for run in self.store.runs_in(("queued", "in_progress"))}
        self._driven &= live  # forget the runs that ended
        for run_id in list(self._driven):
            if run_id not in self._tasks and not self._stopping:
                failed += self.finish(run_id, "failed", last_error=error)
        return failed

    def prune_events(self) -> int:
        """Drop the event logs of runs that finished more than ``event_retention_s`` ago."""
        cutoff = now_ms() - int(self.settings.event_retention_s * 1000)
        return self.store.prune_events(cutoff)

    async def _sweep_forever(self) -> None:
        interval = max(0.05, min(self.settings.sweep_interval_s, self.settings.run_expiry_s / 4))
        last_prune = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep()
                self.fail_orphans()
                if time.monotonic() - last_prune > 60:
                    last_prune = time.monotonic()
                    self.prune_events()
            except Exception:  # pragma: no cover - keep sweeping whatever one run did
                log.exception("expiry sweep failed")

    # -- events ------------------------------------------------------------------------------

    def notify(self, run_id: str) -> None:
        """Wake the stream readers of ``run_id`` (new events were committed)."""
        signal = self._signals.pop(run_id, None)
        if signal is not None:
            signal.set()

    async def event_batches(self, run_id: str, after: int = 0) -> AsyncIterator[list[Event]]:
        """The run's events with ``seq > after``, live, up to and including the next ``done``,
        in the batches they were committed in (one write per batch for SSE).

        The log is drained before the reader stops, whatever the timing: a run's ending status
        and its ``done`` are committed together, so when a quiet wait finds the run ended (or
        gone), the log is read once more after that check, and the reader stops only when
        that read is empty too (the log was pruned, or the thread deleted)."""
        ended = False
        while True:
            signal = self._signals.get(run_id)
            if signal is None:
                signal = self._signals[run_id] = asyncio.Event()
            batch = self.store.events_after(run_id, after)
            for i, event in enumerate(batch):
                if event.event == "done":
                    yield batch[: i + 1]
                    return
            if batch:
                after = batch[-1].seq
                yield batch
                continue
            if ended or self._stopping:
                return
            try:
                await asyncio.wait_for(signal.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                run = self.store.get_run(run_id)
                ended = run is None or run.status in STREAM_END

    # -- creating runs -----------------------------------------------------------------------

    def create_run(
        self,
        run: RunRecord,
        *,
        messages: Sequence[MessageRecord] = (),
        thread: ThreadRecord | None = None,
        thread_messages: Sequence[MessageRecord] = (),
    ) -> RunRecord:
        """Store a queued run (refused with ``ThreadBusy``) and start its task."""
        events: list[EventEntry] = []
        if thread is not None:
            events.append(("thread.created", {"kind": "thread", "record": record_data(thread)}))
        snapshot = {"kind": "run", "record": record_data(run)}
        events += [("thread.run.created", snapshot), ("thread.run.queued", snapshot)]
        blocker = self.store.create_run(
            run, thread=thread, thread_messages=thread_messages, messages=messages, events=events
        )
        if blocker is not None:
            raise ThreadBusy(run.thread_id, blocker, "run")
        self.spawn(run.id)
        return run

    def spawn(self, run_id: str) -> None:
        if run_id in self._tasks or self._stopping:
            return
        task = asyncio.create_task(self._drive(run_id), name=f"run-{run_id}")
        self._tasks[run_id] = task
        self._driven.add(run_id)
        task.add_done_callback(lambda done: self._task_done(run_id, done))

    async def _drive(self, run_id: str) -> None:
        """The task of one run: ``queued`` becomes ``in_progress``, then one ``ModelCall`` after
        another until the run stops (ends, waits for tool outputs, or is cancelled)."""
        history = HistoryCache()  # decoded once, then read on from call to call
        try:
            run = self.store.get_run(run_id)
            while run is not None:
                if run.status == "queued":
                    run = self.transition(
                        run_id,
                        "in_progress",
                        when=("queued",),
                        changes={"started_at": run.started_at or now_ms()},
                        events=("thread.run.in_progress",),
                    ) or self.store.get_run(run_id)
                    continue
                call = ModelCall(self, self.calls, run, history=history)
                if run.status != "in_progress" or not await call.call():
                    return
                run = self.store.get_run(run_id)
        except asyncio.CancelledError:
            if self._cancel_reason.pop(run_id, "stop") == "cancel":
                self.finish(run_id, "cancelled")
        except Exception as exc:
            log.exception("run %s failed", run_id)
            try:
                self.finish(
                    run_id, "failed", last_error={"code": "server_error", "message": str(exc)}
                )
            except Exception:  # the store refuses writes (full, read-only): the sweeper retries
                log.exception("run %s: could not record the failure", run_id)

    def _task_done(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]
        # A task cancelled before it ever ran never reached its own handler.
        if self._cancel_reason.pop(run_id, None) == "cancel" and not self._stopping:
            self.finish(run_id, "cancelled")

    # -- transitions -------------------------------------------------------------------------

    def transition(
        self,
        run_id: str,
        status: str,
        *,
        when: Sequence[str],
        changes: Mapping[str, Any] | None = None,
        events: Sequence[str] = (),
        before: Callable[[Tx], list[EventEntry]] | None = None,
    ) -> RunRecord | None:
        """Conditionally move a run to ``status``; returns the new run or None if it had moved.

        ``before(tx)`` runs first in the same transaction (a turn's pending writes) and returns
        the events to log ahead of the run's own; those are committed either way.
        """
        update = {"status": status, **(changes or {})}
        with self.store.transaction() as tx:
            current = tx.get_run(run_id)
            if current is None:  # deleted with its thread: nothing left to write
                return None
            out = before(tx) if before is not None else []
            moved = current.status in when and tx.set_run(run_id, update, when=when)
            run = dataclasses.replace(current, **update) if moved else current
            if moved:
                snapshot = {"kind": "run", "record": record_data(run)}
                out += [(name, snapshot) for name in events]
                if status in STREAM_END:
                    out.append(("done", {}))
            if out:
                tx.append_events(run_id, run.thread_id, out)
        self.notify(run_id)
        return run if moved else None

    def finish(
        self, run_id: str, status: str, *, last_error: Mapping[str, Any] | None = None
    ) -> bool:
        """End a run as cancelled / expired / failed from any state that allows it."""
        when = {
            "cancelled": ("cancelling",),
            "expired": ACTIVE,
            "failed": ("queued", "in_progress", "requires_action"),
        }[status]
        now = now_ms()
        stamp = {"cancelled": "cancelled_at", "expired": "expired_at", "failed": "failed_at"}
        reason = {"cancelled": "run_cancelled", "expired": "run_expired", "failed": "run_failed"}
        with self.store.transaction() as tx:
            run = tx.get_run(run_id)
            if run is None or run.status not in when:
                return False
            changes: dict[str, Any] = {"status": status, "required_action": None}
            if status == "cancelled":
                changes["cancelled_at"] = now
            elif status == "failed":
                changes["failed_at"] = now
                changes["last_error"] = dict(last_error or {"code": "server_error"})
            tx.set_run(run_id, changes, when=(run.status,))
            step_changes: dict[str, Any] = {"status": status, stamp[status]: now}
            if status == "failed":
                step_changes["last_error"] = changes["last_error"]
            events = _stop_steps(
                tx, run_id, status, step_changes, reason[status], now, announce=True
            )
            final = tx.get_run(run_id)
            events.append((f"thread.run.{status}", {"kind": "run", "record": record_data(final)}))
            events.append(("done", {}))
            tx.append_events(run_id, run.thread_id, events)
        task = self._tasks.get(run_id)
        if task is not None and task is not asyncio.current_task():
            self._cancel_reason[run_id] = "finished"
            task.cancel()
        self.notify(run_id)
        return True

    def _abandon_partial(self, run: RunRecord) -> None:
        """Mark the steps and messages a crashed model call left in progress, then resume.

        A tool step whose calls were recorded (built-in tools had started) is completed instead,
        each call without an output answered with ``INTERRUPTED``: the model reads that its call
        did not finish, and no built-in tool runs twice."""
        now = now_ms()
        error = {"code": "server_error", "message": "the server stopped during this step"}
        with self.store.transaction() as tx:
            events: list[EventEntry] = []
            for step in tx.steps_in(run.id, "in_progress"):
                calls = step.step_details.get("tool_calls") or []
                if step.type == "tool_calls" and calls:
                    details = {**step.step_details, "tool_calls": [_interrupted(c) for c in calls]}
                    done = {"status": "completed", "completed_at": now, "step_details": details}
                    tx.set_step(step.id, done)
                    record = record_data(tx.get_step(step.id))
                    events.append(("thread.run.step.completed", {"kind": "step", "record": record}))
            changes = {"status": "failed", "failed_at": now, "last_error": error}
            events += _stop_steps(tx, run.id, "failed", changes, "run_failed", now, announce=False)
            tx.append_events(run.id, run.thread_id, events)

    # -- requests on existing runs -----------------------------------------------------------

    def get_run(self, thread_id: str, run_id: str) -> RunRecord:
        run = self.store.get_run(run_id)
        if run is None or run.thread_id != thread_id:
            raise NotFound("run", run_id)
        return run

    def cancel(self, thread_id: str, run_id: str) -> RunRecord:
        """Ask a run to stop: ``cancelling`` now, ``cancelled`` as soon as its task lets go."""
        run = self.get_run(thread_id, run_id)
        if run.status == "cancelling":
            return run
        moved = self.transition(
            run_id,
            "cancelling",
            when=("queued", "in_progress", "requires_action"),
            events=("thread.run.cancelling",),
        )
        if moved is None:
            raise ApiError(
                400,
                "invalid_request",
                f"Cannot cancel run with status '{self.get_run(thread_id, run_id).status}'.",
            )
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            self._cancel_reason[run_id] = "cancel"
            task.cancel()
        else:
            self.finish(run_id, "cancelled")
        return moved

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: Sequence[Mapping[str, Any]]
    ) -> tuple[RunRecord, int]:
        """Give a ``requires_action`` run its outputs (all at once); returns it and the event
        position a stream of the resumed run starts after."""
        run = self.get_run(thread_id, run_id)
        if run.status != "requires_action" or not run.required_action:
            raise ApiError(
                400,
                "invalid_request",
                f'Runs in status "{run.status}" do not accept tool outputs.',
            )
        pending = list(run.required_action.get("tool_calls") or [])
        by_id = _match_outputs(pending, outputs)
        after = self.store.last_event_seq(run_id)
        now = now_ms()
        step_id = str(run.required_action.get("step_id"))
        with self.store.transaction() as tx:
            if not tx.set_run(
                run_id, {"status": "queued", "required_action": None}, when=("requires_action",)
            ):
                raise ApiError(400, "invalid_request", "The run is no longer waiting for outputs.")
            step = tx.get_step(step_id)
            events: list[EventEntry] = []
            if step is not None:
                details = dict(step.step_details)
                calls = [dict(c) for c in details.get("tool_calls", [])]
                for call in calls:
                    if call["id"] in by_id:
                        call["output"] = by_id[call["id"]]
                details["tool_calls"] = calls
                tx.set_step(
                    step_id,
                    {"step_details": details, "status": "completed", "completed_at": now},
                )
                updated = tx.get_step(step_id)
                events.append(
                    ("thread.run.step.completed", {"kind": "step", "record": record_data(updated)})
                )
            queued = tx.get_run(run_id)
            assert queued is not None
            events.append(("thread.run.queued", {"kind": "run", "record": record_data(queued)}))
            tx.append_events(run_id, run.thread_id, events)
        self.notify(run_id)
        self.spawn(run_id)
        return queued, after


def _stop_steps(
    tx: Tx,
    run_id: str,
    status: str,
    changes: Mapping[str, Any],
    reason: str,
    now: int,
    *,
    announce: bool,
) -> list[EventEntry]:
    """Apply ``changes`` to the run's in-progress steps and mark the replies they were writing
    incomplete (``reason``, at ``now``); the events that say so (the messages' only when
    ``announce``)."""
    events: list[EventEntry] = []
    for step in tx.steps_in(run_id, "in_progress"):
        tx.set_step(step.id, changes)
        updated = tx.get_step(step.id)
        events.append(
            (f"thread.run.step.{status}", {"kind": "step", "record": record_data(updated)})
        )
        message_id = step.step_details.get("message_creation", {}).get("message_id")
        if message_id:
            incomplete = {"reason": reason}
            tx.set_message(
                message_id,
                {"status": "incomplete", "incomplete_at": now, "incomplete_details": incomplete},
            )
            if announce:
                message = record_data(tx.get_message(message_id))
                events.append(("thread.message.incomplete", {"kind": "message", "record": message}))
    return events


def _match_outputs(
    pending: Sequence[Mapping[str, Any]], outputs: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Outputs by call id: by ``tool_call_id``, or by position when ids are empty or missing."""
    expected = [str(c["id"]) for c in pending]
    texts: list[str] = []
    for item in outputs:
        value = item.get("output")
        texts.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    ids = [item.get("tool_call_id") for item in outputs]
    if all(not i for i in ids):
        if len(outputs) != len(expected):
            raise ApiError(
                400,
                "invalid_value",
                f"Expected {len(expected)} tool outputs (one per pending call), "
                f"got {len(outputs)}.",
                param="tool_outputs",
            )
        return dict(zip(expected, texts, strict=True))
    got: dict[str, str] = {}
    for position, (call_id, text) in enumerate(zip(ids, texts, strict=True)):
        if not call_id:
            call_id = expected[position] if position < len(expected) else ""
        if call_id not in expected:
            raise ApiError(
                400,
                "invalid_value",
                f"No tool call with id '{call_id}' is waiting for an output in this run.",
                param="tool_outputs",
            )
        got[str(call_id)] = text
    missing = [i for i in expected if i not in got]
    if missing:
        raise ApiError(
            400,
            "invalid_value",
            f"Expected tool outputs for call_ids {expected}, got {list(got)}: "
            f"submit the outputs of every pending call in one request.",
            param="tool_outputs",
        )
    return got


#: The output of a tool call a crash cut off, as the model reads it.
INTERRUPTED = (
    "error: the server stopped while this call was running, so its result is lost; it was not "
    "run again (it may or may not have taken effect)"
)


#: The output of a recorded tool call the crash came before.
NOT_RUN = "error: the server stopped before this call was run; it was not run"


def _interrupted(call: dict[str, Any]) -> dict[str, Any]:
    """A recorded tool call after a crash: as it was if it finished, else failed."""
    if call.get("output") is not None:
        return call
    said = INTERRUPTED if call.get("started_at") else NOT_RUN
    return {**call, "output": said, "logs": said, "is_error": True}
