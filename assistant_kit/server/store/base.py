"""The store seam: the ``Store`` protocol, its unit of work ``Tx``, pages and typed errors.

Everything above the store (services, routes, the run engine) speaks the records of
``records.py``, ``PageQuery`` / ``Page`` and the errors below, never a database driver.
``sqlite.py`` is today's implementation; another one (PostgreSQL with several replicas)
subclasses ``Store``, implements it and ``Tx`` over the same migrations, and nothing above
changes::

    store = open_store(".kit/server.db")            # a SqliteStore (``store/__init__.py``)
    async with store.lifespan():
        await store.insert_assistant(AssistantRecord(id=new_id(), created_at=now_ms(), model="m"))
        with store.transaction() as tx:              # one unit of work, never awaited inside
            if tx.set_run(run_id, {"status": "cancelling"}, when=("queued", "in_progress")):
                tx.append_events(run_id, thread_id, [("thread.run.cancelling", snapshot)])

Errors: ``StoreFull`` (no room: the HTTP layer answers 507), ``StoreUnavailable`` (read-only,
locked, unreachable, not a database: 503), ``Conflict`` (a write that collides with a stored
row: 409). A failed unit of work leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from assistant_kit.server.store.records import (
    ASSISTANTS,
    MESSAGES,
    THREADS,
    AssistantRecord,
    Event,
    EventEntry,
    FileRecord,
    MessageRecord,
    RunRecord,
    StepRecord,
    Table,
    ThreadRecord,
)

R = TypeVar("R")
Order = Literal["asc", "desc"]


# -- pages -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageQuery:
    """One page of a list: at most ``limit`` items in ``order``, after/before neutral ids."""

    limit: int = 20
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    items: list[R]
    has_more: bool


class CursorNotFound(LookupError):
    """An ``after`` / ``before`` id that names no object in the listed collection."""

    def __init__(self, param: str, value: str) -> None:
        self.param = param
        self.value = value
        super().__init__(f"{param}={value}")


# -- errors ----------------------------------------------------------------------------------


class StoreError(Exception):
    """The store could not do what was asked; nothing of the failed unit of work was kept."""


class StoreFull(StoreError):
    """No room for the write: the disk is full or the database reached its size limit."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or written now (read-only, locked, not a database).

    ``read_only`` says the store is there and readable but refuses writes."""

    def __init__(self, detail: str, *, read_only: bool = False) -> None:
        self.detail = detail
        self.read_only = read_only
        super().__init__(detail)


class Conflict(StoreError):
    """The write collides with what is stored (a duplicate id)."""


# -- the protocol ----------------------------------------------------------------------------


class Tx(Protocol):
    """One unit of work (``Store.transaction()``): all of it is kept, or none of it.

    The run engine and the model loop write through this and nothing else: conditional run
    moves, steps, messages and the events that announce them, committed together.
    """

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def set_run(
        self, run_id: str, changes: Mapping[str, Any], *, when: Sequence[str] | None = None
    ) -> bool:
        """Update a run; with ``when``, only if its status is one of those (conditional)."""
        ...

    def get_step(self, step_id: str) -> StepRecord | None: ...

    def steps_in(self, run_id: str, status: str) -> list[StepRecord]: ...

    def insert_step(self, step: StepRecord) -> None: ...

    def set_step(self, step_id: str, changes: Mapping[str, Any]) -> None: ...

    def get_message(self, message_id: str) -> MessageRecord | None: ...

    def insert_message(self, message: MessageRecord) -> None: ...

    def set_message(self, message_id: str, changes: Mapping[str, Any]) -> None: ...

    def thread_position(self, thread_id: str) -> int:
        """The position of the thread's newest message (0 for none): steps sort after it."""
        ...

    def append_events(self, run_id: str, thread_id: str, events: Iterable[EventEntry]) -> None: ...


class Store(Protocol):
    """Everything the server keeps: assistants, threads, messages, runs, steps, the run event
    log and files. Async operations serve requests; the run engine's are synchronous units of
    work that never await inside (so one event loop serialises them by construction).

    An implementation subclasses this protocol, so the operations written here in terms of the
    generic ones (``get_assistant`` is ``get(ASSISTANTS, id)``) come with it."""

    # -- lifecycle

    def open(self) -> None:
        """Connect and apply pending migrations; ``StoreUnavailable`` if it cannot."""
        ...

    def close(self) -> None: ...

    def lifespan(self) -> contextlib.AbstractAsyncContextManager[Store]: ...

    def schema_version(self) -> int: ...

    def transaction(self) -> contextlib.AbstractContextManager[Tx]:
        """One atomic unit of work; do not await inside it."""
        ...

    def claim_reaper(self) -> bool:
        """Whether this process may resume the runs a crash left: no other live server on this
        store holds the claim. Held until ``release_reaper`` or the holder's death."""
        ...

    def release_reaper(self) -> None: ...

    # -- any table

    async def insert(self, table: Table[R], *records: R) -> None: ...

    async def get(self, table: Table[R], id: str, **scope: str) -> R | None: ...

    async def update(
        self,
        table: Table[R],
        id: str,
        changes: Mapping[str, Any],
        *,
        expect: Mapping[str, Any] | None = None,
        **scope: str,
    ) -> R | None:
        """Set ``changes`` on one row and return it; ``None`` if no row matched. ``expect``
        makes it conditional: each column must hold the value given (or one of a tuple)."""
        ...

    async def delete(self, table: Table[R], id: str, **scope: str) -> bool: ...

    async def list_page(
        self, table: Table[R], page: PageQuery, filters: Mapping[str, Any] | None = None
    ) -> Page[R]:
        """A page ordered by ``(created_at, seq)``; ``filters`` are column equalities."""
        ...

    # -- assistants, threads, messages (the same for every backend: the generic operations)

    async def insert_assistant(self, record: AssistantRecord) -> None:
        await self.insert(ASSISTANTS, record)

    async def get_assistant(self, id: str) -> AssistantRecord | None:
        return await self.get(ASSISTANTS, id)

    async def update_assistant(self, id: str, changes: Mapping[str, Any]) -> AssistantRecord | None:
        return await self.update(ASSISTANTS, id, changes)

    async def delete_assistant(self, id: str) -> bool:
        return await self.delete(ASSISTANTS, id)

    async def list_assistants(self, page: PageQuery) -> Page[AssistantRecord]:
        return await self.list_page(ASSISTANTS, page)

    async def insert_thread(
        self, record: ThreadRecord, messages: Sequence[MessageRecord] = ()
    ) -> None:
        """Store a thread and its initial messages atomically."""
        ...

    async def get_thread(self, id: str) -> ThreadRecord | None:
        return await self.get(THREADS, id)

    async def update_thread(self, id: str, changes: Mapping[str, Any]) -> ThreadRecord | None:
        return await self.update(THREADS, id, changes)

    async def delete_thread(self, id: str) -> bool:
        """Delete a thread and every row of ``THREAD_CHILDREN`` it owns, atomically."""
        ...

    async def insert_message(self, record: MessageRecord) -> None:
        await self.insert(MESSAGES, record)

    async def get_message(self, thread_id: str, id: str) -> MessageRecord | None:
        return await self.get(MESSAGES, id, thread_id=thread_id)

    async def update_message(
        self, thread_id: str, id: str, changes: Mapping[str, Any]
    ) -> MessageRecord | None:
        return await self.update(MESSAGES, id, changes, thread_id=thread_id)

    async def delete_message(self, thread_id: str, id: str) -> bool:
        return await self.delete(MESSAGES, id, thread_id=thread_id)

    async def list_messages(
        self, thread_id: str, page: PageQuery, *, run_id: str | None = None
    ) -> Page[MessageRecord]:
        filters: dict[str, Any] = {"thread_id": thread_id}
        if run_id is not None:
            filters["run_id"] = run_id
        return await self.list_page(MESSAGES, page, filters)

    # -- runs (the engine's reads; its writes go through ``transaction()``)

    def create_run(
        self,
        run: RunRecord,
        *,
        thread: ThreadRecord | None = None,
        thread_messages: Sequence[MessageRecord] = (),
        messages: Sequence[MessageRecord] = (),
        events: Sequence[EventEntry] = (),
    ) -> str | None:
        """Insert a run (and its new thread, or its additional messages) unless the thread has
        an active run: returns that run's id, or ``None`` when inserted."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def active_run(self, thread_id: str) -> str | None: ...

    def runs_in(
        self, statuses: Sequence[str], expires_before: int | None = None
    ) -> list[RunRecord]: ...

    def steps(self, run_id: str) -> list[StepRecord]: ...

    def history(
        self, thread_id: str, newest: int | None = None, after: int = 0
    ) -> tuple[list[tuple[int, MessageRecord]], list[StepRecord]]:
        """The thread's messages with their position (``seq``) and its tool steps, both oldest
        first: every message after position ``after``, or only the ``newest`` N of them (one
        bounded query), and the tool steps made after the oldest message returned (after
        position ``after`` when every message was)."""
        ...

    def events_after(self, run_id: str, after: int, limit: int = 500) -> list[Event]: ...

    def last_event_seq(self, run_id: str) -> int: ...

    def prune_events(self, before_ms: int) -> int:
        """Delete log entries older than ``before_ms`` of runs that have finished."""
        ...

    # -- files

    async def insert_file(self, record: FileRecord, data: bytes) -> None: ...

    async def file_content(self, id: str) -> bytes | None: ...
