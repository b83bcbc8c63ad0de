"""Runs, run steps and run events in the store: records, tables and the SQL the engine needs.

Every status change of a run is a conditional update (``UPDATE runs SET ... WHERE id = ? AND
status IN (...)``) written in the same transaction as the events that announce it, so the event
log and the rows never disagree and a stream that reads an event finds the row already final.

Event data is stored dialect-neutral: ``{"kind": "run" | "step" | "message" | "thread", "record":
{...}}`` for snapshots, ``{"kind": "message_delta" | "step_delta", ...}`` for deltas; each dialect
renders them when a stream reads them (``events.py``).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant_kit.server.ids import now_ms
from assistant_kit.server.store import (
    MESSAGES,
    THREAD_CHILDREN,
    MessageRecord,
    Store,
    Table,
    ThreadRecord,
)

#: A run in one of these holds its thread: no new messages or runs meanwhile.
ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
#: Statuses a run never leaves.
TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")
#: Run statuses at which a stream (one create or one submit) ends.
STREAM_END = ("requires_action", *TERMINAL)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run with its effective settings (run override, else the assistant's)."""

    id: str
    thread_id: str
    assistant_id: str
    created_at: int
    status: str
    model: str
    instructions: str = ""
    additional_instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: dict[str, Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool = True
    response_format: Any = None
    #: ``{"tool_calls": [{id, name, arguments}], "step_id": ...}`` while requires_action.
    required_action: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    #: ``{"prompt_tokens", "completion_tokens"}`` totals so far (None until the first call ends).
    usage: dict[str, int] | None = None
    started_at: int | None = None
    expires_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None
    model_calls: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A run step; ``step_details`` is neutral (see ``tool_call`` entries below).

    A tool call entry: ``{"id", "type": "function" | <built-in type>, "name", "arguments",
    "output": str | None, "logs": str, "images": [file ids], "urls": [...]}``.
    ``thread_position`` is the ``seq`` of the thread's newest message when the step was made, so
    the transcript puts the step right after that message.
    """

    id: str
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: int
    type: str
    status: str
    step_details: dict[str, Any]
    last_error: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    completed_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    thread_position: int = 0


RUNS: Table[RunRecord] = Table(
    "runs",
    RunRecord,
    json_columns=(
        "tools",
        "file_ids",
        "metadata",
        "truncation_strategy",
        "tool_choice",
        "response_format",
        "required_action",
        "last_error",
        "incomplete_details",
        "usage",
    ),
    scope="thread_id",
)
STEPS: Table[StepRecord] = Table(
    "run_steps",
    StepRecord,
    json_columns=("step_details", "last_error", "usage", "metadata"),
    scope="run_id",
)

for _child in ("runs", "run_steps", "run_events"):
    if _child not in THREAD_CHILDREN:
        THREAD_CHILDREN.append(_child)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def record_data(record: Any) -> dict[str, Any]:
    """A record as a JSON-ready dict (for the event log)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a run's event log."""

    seq: int
    run_id: str
    event: str
    data: dict[str, Any]


class Pending:
    """Events and row writes collected for one transaction (``RunStore.commit``)."""

    def __init__(self, run_id: str, thread_id: str) -> None:
        self.run_id = run_id
        self.thread_id = thread_id
        self.events: list[tuple[str, dict[str, Any]]] = []

    def snapshot(self, event: str, kind: str, record: Any) -> None:
        self.events.append((event, {"kind": kind, "record": record_data(record)}))

    def delta(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))


class RunStore:
    """The run-related queries over the app's ``Store`` (same connection, same lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reads -------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        with self.store._lock:
            row = self.store.db.execute(f"{RUNS.select} WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else RUNS.from_row(row)

    def active_run(self, thread_id: str) -> str | None:
        """The id of the thread's active run, if any."""
        marks = ", ".join("?" for _ in ACTIVE)
        with self.store._lock:
            row = self.store.db.execute(
                f"SELECT id FROM runs WHERE thread_id = ? AND status IN ({marks}) LIMIT 1",
                (thread_id, *ACTIVE),
            ).fetchone()
        return None if row is None else str(row[0])

    def runs_in(
        self, statuses: Sequence[str], expires_before: int | None = None
    ) -> list[RunRecord]:
        marks = ", ".join("?" for _ in statuses)
        sql = f"{RUNS.select} WHERE status IN ({marks})"
        params: list[Any] = list(statuses)
        if expires_before is not None:
            sql += " AND expires_at IS NOT NULL AND expires_at <= ?"
            params.append(expires_before)
        with self.store._lock:
            rows = self.store.db.execute(sql + " ORDER BY seq", params).fetchall()
        return [RUNS.from_row(r) for r in rows]

    def steps(self, run_id: str) -> list[StepRecord]:
        with self.store._lock:
            rows = self.store.db.execute(
                f"{STEPS.select} WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [STEPS.from_row(r) for r in rows]

    def history(self, thread_id: str) -> tuple[list[tuple[int, MessageRecord]], list[StepRecord]]:
        """The thread's messages with their ``seq`` and its tool steps, both oldest first."""
        with self.store._lock:
            db = self.store.db
            rows = db.execute(
                f"SELECT seq, {', '.join(MESSAGES.columns)} FROM messages "
                "WHERE thread_id = ? ORDER BY seq",
                (thread_id,),
            ).fetchall()
            step_rows = db.execute(
                f"{STEPS.select} WHERE thread_id = ? AND type = 'tool_calls' ORDER BY seq",
                (thread_id,),
            ).fetchall()
        messages = [(int(r[0]), MESSAGES.from_row(r[1:])) for r in rows]
        return messages, [STEPS.from_row(r) for r in step_rows]

    def thread_position(self, db: sqlite3.Connection, thread_id: str) -> int:
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        return int(row[0])

    def events_after(self, run_id: str, after: int, limit: int = 500) -> list[Event]:
        with self.store._lock:
            rows = self.store.db.execute(
                "SELECT seq, event, data FROM run_events WHERE run_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (run_id, after, limit),
            ).fetchall()
        return [Event(int(s), run_id, e, json.loads(d)) for s, e, d in rows]

    def last_event_seq(self, run_id: str) -> int:
        with self.store._lock:
            row = self.store.db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = ?", (run_id,)
            ).fetchone()
        return int(row[0])

    # -- writes ------------------------------------------------------------------------------

    def append_events(
        self, db: sqlite3.Connection, run_id: str, thread_id: str, events: Iterable[tuple[str, Any]]
    ) -> None:
        now = now_ms()
        db.executemany(
            "INSERT INTO run_events (run_id, thread_id, created_at, event, data) "
            "VALUES (?, ?, ?, ?, ?)",
            [(run_id, thread_id, now, name, _dumps(data)) for name, data in events],
        )

    def prune_events(self, db: sqlite3.Connection, before_ms: int) -> int:
        """Delete log entries older than ``before_ms`` of runs that have finished."""
        marks = ", ".join("?" for _ in TERMINAL)
        return db.execute(
            "DELETE FROM run_events WHERE created_at < ? AND run_id IN "
            f"(SELECT id FROM runs WHERE status IN ({marks}))",
            (before_ms, *TERMINAL),
        ).rowcount

    def insert_run(
        self,
        run: RunRecord,
        *,
        thread: ThreadRecord | None = None,
        thread_messages: Sequence[MessageRecord] = (),
        messages: Sequence[MessageRecord] = (),
        events: Sequence[tuple[str, Any]] = (),
    ) -> str | None:
        """Insert a run (and its new thread / additional messages) unless the thread is busy.

        Returns the id of the active run that blocked it, or ``None`` when inserted.
        """
        from assistant_kit.server.store import THREADS

        with self.store.transaction() as db:
            if thread is not None:
                db.execute(THREADS.insert, THREADS.to_row(thread))
                db.executemany(MESSAGES.insert, [MESSAGES.to_row(m) for m in thread_messages])
            else:
                marks = ", ".join("?" for _ in ACTIVE)
                row = db.execute(
                    f"SELECT id FROM runs WHERE thread_id = ? AND status IN ({marks}) LIMIT 1",
                    (run.thread_id, *ACTIVE),
                ).fetchone()
                if row is not None:
                    return str(row[0])
            db.executemany(MESSAGES.insert, [MESSAGES.to_row(m) for m in messages])
            db.execute(RUNS.insert, RUNS.to_row(run))
            self.append_events(db, run.id, run.thread_id, events)
        return None

    def set_run(
        self,
        db: sqlite3.Connection,
        run_id: str,
        changes: Mapping[str, Any],
        *,
        when: Sequence[str] | None = None,
    ) -> bool:
        """Update a run; with ``when``, only if its status is one of those (conditional)."""
        assignments = ", ".join(f"{c} = ?" for c in changes)
        values = [RUNS.encode(c, v) for c, v in changes.items()]
        sql = f"UPDATE runs SET {assignments} WHERE id = ?"
        params: list[Any] = [*values, run_id]
        if when is not None:
            sql += f" AND status IN ({', '.join('?' for _ in when)})"
            params.extend(when)
        return db.execute(sql, params).rowcount > 0

    def insert_step(self, db: sqlite3.Connection, step: StepRecord) -> None:
        db.execute(STEPS.insert, STEPS.to_row(step))

    def set_step(self, db: sqlite3.Connection, step_id: str, changes: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{c} = ?" for c in changes)
        values = [STEPS.encode(c, v) for c, v in changes.items()]
        db.execute(f"UPDATE run_steps SET {assignments} WHERE id = ?", (*values, step_id))

    def insert_message(self, db: sqlite3.Connection, message: MessageRecord) -> None:
        db.execute(MESSAGES.insert, MESSAGES.to_row(message))

    def set_message(
        self, db: sqlite3.Connection, message_id: str, changes: Mapping[str, Any]
    ) -> None:
        assignments = ", ".join(f"{c} = ?" for c in changes)
        values = [MESSAGES.encode(c, v) for c, v in changes.items()]
        db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*values, message_id))

    def steps_in(self, db: sqlite3.Connection, run_id: str, status: str) -> list[StepRecord]:
        rows = db.execute(
            f"{STEPS.select} WHERE run_id = ? AND status = ? ORDER BY seq", (run_id, status)
        ).fetchall()
        return [STEPS.from_row(r) for r in rows]

    def get_step_in(self, db: sqlite3.Connection, step_id: str) -> StepRecord | None:
        row = db.execute(f"{STEPS.select} WHERE id = ?", (step_id,)).fetchone()
        return None if row is None else STEPS.from_row(row)

    def get_run_in(self, db: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = db.execute(f"{RUNS.select} WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else RUNS.from_row(row)

    def get_message_in(self, db: sqlite3.Connection, message_id: str) -> MessageRecord | None:
        row = db.execute(f"{MESSAGES.select} WHERE id = ?", (message_id,)).fetchone()
        return None if row is None else MESSAGES.from_row(row)
