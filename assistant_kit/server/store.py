"""The server's state behind a small interface: SQL that SQLite runs today and Postgres could.

One ``Store`` per app. SQLite runs in WAL mode on a single connection owned by the event loop's
thread: every call is a few microseconds of local I/O, so it runs inline (no thread hop), and
because nothing awaits inside a statement or a ``transaction()`` block, writes from concurrent
requests are serialised by construction. A lock still guards the connection so a worker thread (a
model backend, a tool) may call in safely.

Every table follows one pattern (see ``migrations.py``): ``seq`` + ``id`` (neutral UUID) +
``created_at`` (ms) + columns, JSON values as text. A ``Table`` describes that mapping for a frozen
record dataclass, and the generic ``insert`` / ``get`` / ``update`` / ``delete`` / ``list_page``
helpers serve any table, so later tables (runs, run_steps, run_events, files) need a record class,
a ``Table`` and a migration, not new SQL plumbing::

    RUNS = Table("runs", RunRecord, json_columns={"tools", "metadata", "usage"})
    run = await store.get(RUNS, run_id, thread_id=thread_id)
    with store.transaction() as db:                      # conditional update, one writer
        moved = db.execute("UPDATE runs SET status = ? WHERE id = ? AND status = ?", ...).rowcount
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from assistant_kit.server.migrations import migrate, schema_version

R = TypeVar("R")
Order = Literal["asc", "desc"]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class AssistantRecord:
    id: str
    created_at: int
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    tool_resources: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    response_format: Any = None


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    id: str
    created_at: int
    metadata: dict[str, str] = field(default_factory=dict)
    tool_resources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A thread message; ``content`` holds output-form parts (``{"type": "text", ...}``)."""

    id: str
    thread_id: str
    created_at: int
    role: str
    content: list[dict[str, Any]]
    assistant_id: str | None = None
    run_id: str | None = None
    file_ids: list[str] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = "completed"
    incomplete_details: dict[str, Any] | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None


class Table(Generic[R]):
    """How a record dataclass maps onto a table: columns in field order, JSON ones as text.

    ``scope`` names the column that scopes lookups (``thread_id`` for messages), so an id is only
    found under its parent.
    """

    def __init__(
        self,
        name: str,
        record: type[R],
        *,
        json_columns: Sequence[str] = (),
        scope: str | None = None,
    ) -> None:
        self.name = name
        self.record = record
        self.columns = tuple(f.name for f in dataclasses.fields(record))  # type: ignore[arg-type]
        self.json_columns = frozenset(json_columns)
        self.scope = scope
        self._json_at = tuple(i for i, c in enumerate(self.columns) if c in self.json_columns)
        self.select = f"SELECT {', '.join(self.columns)} FROM {name}"
        self.insert = (
            f"INSERT INTO {name} ({', '.join(self.columns)}) "
            f"VALUES ({', '.join('?' for _ in self.columns)})"
        )

    def to_row(self, record: R) -> tuple[Any, ...]:
        json_columns = self.json_columns
        return tuple(
            _dumps(v) if c in json_columns and v is not None else v
            for c, v in ((c, getattr(record, c)) for c in self.columns)
        )

    def from_row(self, row: Sequence[Any]) -> R:
        values = list(row)
        for i in self._json_at:
            if values[i] is not None:
                values[i] = json.loads(values[i])
        return self.record(*values)

    def encode(self, column: str, value: Any) -> Any:
        if column not in self.columns or column in ("id", "created_at"):
            raise ValueError(f"{self.name}.{column} cannot be updated")
        return _dumps(value) if column in self.json_columns and value is not None else value


ASSISTANTS: Table[AssistantRecord] = Table(
    "assistants",
    AssistantRecord,
    json_columns=("tools", "file_ids", "tool_resources", "metadata", "response_format"),
)
THREADS: Table[ThreadRecord] = Table(
    "threads", ThreadRecord, json_columns=("metadata", "tool_resources")
)
MESSAGES: Table[MessageRecord] = Table(
    "messages",
    MessageRecord,
    json_columns=("content", "file_ids", "attachments", "metadata", "incomplete_details"),
    scope="thread_id",
)

#: Tables whose rows belong to a thread (``thread_id`` column); deleting a thread deletes them.
#: Later migrations append theirs (runs, run_steps, run_events).
THREAD_CHILDREN: list[str] = ["messages"]


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


def _private_file(path: Path) -> None:
    """Create the store's folder and file readable by this user only (SQLite gives the WAL and
    shared-memory files the same mode). The code interpreter runs model-written code as another
    user on this machine; a world-readable store would hand it every conversation."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    mode = path.stat().st_mode
    if mode & 0o077:
        with contextlib.suppress(OSError):  # not ours to change: leave it as it is
            path.chmod(mode & 0o700)


class Store:
    """SQLite (WAL) storage of assistants, threads, messages; ``":memory:"`` for tests."""

    def __init__(self, database: str | Path) -> None:
        self.database = str(database)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, set WAL mode and apply pending migrations."""
        if self._db is not None:
            return
        if self.database != ":memory:" and not self.database.startswith("file:"):
            _private_file(Path(self.database))
        db = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False, uri=True)
        db.execute("PRAGMA busy_timeout = 5000")
        if self.database != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db)
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[Store]:
        """Open for the life of an app: ``async with store.lifespan(): ...``."""
        self.open()
        try:
            yield self
        finally:
            self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    def schema_version(self) -> int:
        with self._lock:
            return schema_version(self.db)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic block of statements; do not await inside it."""
        with self._lock:
            db = self.db
            # IMMEDIATE takes the write lock up front, so a second process on the same file waits
            # (busy_timeout) instead of failing a deferred read-then-write upgrade with "locked"
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite already rolled back after SQLITE_FULL and the like
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- generic helpers (any Table) ---------------------------------------------------------

    async def insert(self, table: Table[R], *records: R) -> None:
        with self.transaction() as db:
            db.executemany(table.insert, [table.to_row(r) for r in records])

    async def get(self, table: Table[R], id: str, **scope: str) -> R | None:
        where, params = _where(table, id, scope)
        with self._lock:
            row = self.db.execute(f"{table.select} WHERE {where}", params).fetchone()
        return None if row is None else table.from_row(row)

    async def update(
        self,
        table: Table[R],
        id: str,
        changes: Mapping[str, Any],
        *,
        expect: Mapping[str, Any] | None = None,
        **scope: str,
    ) -> R | None:
        """Set ``changes`` (column -> value) on one row and return it; ``None`` if no row matched.

        ``expect`` makes it conditional, the way run statuses move: each column must hold the
        value given (or one of them, for a tuple, list or set), else nothing changes::

            await store.update(RUNS, rid, {"status": "cancelling"},
                               expect={"status": ("queued", "in_progress")})
        """
        where, params = _where(table, id, scope)
        conditions, expected = _expect(table, expect or {})
        if changes:
            assignments = ", ".join(f"{c} = ?" for c in changes)
            values = [table.encode(c, v) for c, v in changes.items()]
            with self.transaction() as db:
                cursor = db.execute(
                    f"UPDATE {table.name} SET {assignments} WHERE {where}{conditions}",
                    (*values, *params, *expected),
                )
                if cursor.rowcount == 0:
                    return None
        elif expect:
            with self._lock:
                found = self.db.execute(
                    f"SELECT 1 FROM {table.name} WHERE {where}{conditions}", (*params, *expected)
                ).fetchone()
            if found is None:
                return None
        return await self.get(table, id, **scope)

    async def delete(self, table: Table[R], id: str, **scope: str) -> bool:
        where, params = _where(table, id, scope)
        with self.transaction() as db:
            return db.execute(f"DELETE FROM {table.name} WHERE {where}", params).rowcount > 0

    async def list_page(
        self, table: Table[R], page: PageQuery, filters: Mapping[str, Any] | None = None
    ) -> Page[R]:
        """A page ordered by ``(created_at, seq)``; ``filters`` are column equalities.

        ``after`` gives the items that follow that id in ``order``; ``before`` the ones that
        precede it (the nearest ``limit`` of them, still in ``order``). ``has_more`` says whether
        more items lie beyond the page in the direction of travel.
        """
        conditions = [f"{column} = ?" for column in (filters or {})]
        params: list[Any] = list((filters or {}).values())
        descending = page.order == "desc"
        with self._lock:
            for param, value, greater in (
                ("after", page.after, not descending),
                ("before", page.before, descending),
            ):
                if value is None:
                    continue
                key = self.db.execute(
                    f"SELECT created_at, seq FROM {table.name} WHERE id = ?"
                    + "".join(f" AND {c}" for c in conditions),
                    (value, *params),
                ).fetchone()
                if key is None:
                    raise CursorNotFound(param, value)
                conditions.append(f"(created_at, seq) {'>' if greater else '<'} (?, ?)")
                params.extend(key)
            reverse = page.before is not None and page.after is None
            ascending = descending == reverse
            direction = "ASC" if ascending else "DESC"
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            rows = self.db.execute(
                f"{table.select}{where} ORDER BY created_at {direction}, seq {direction} LIMIT ?",
                (*params, page.limit + 1),
            ).fetchall()
        has_more = len(rows) > page.limit
        items = [table.from_row(r) for r in rows[: page.limit]]
        if reverse:
            items.reverse()
        return Page(items, has_more)

    # -- assistants --------------------------------------------------------------------------

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

    # -- threads -----------------------------------------------------------------------------

    async def insert_thread(
        self, record: ThreadRecord, messages: Sequence[MessageRecord] = ()
    ) -> None:
        """Store a thread and its initial messages atomically."""
        with self.transaction() as db:
            db.execute(THREADS.insert, THREADS.to_row(record))
            if messages:
                db.executemany(MESSAGES.insert, [MESSAGES.to_row(m) for m in messages])

    async def get_thread(self, id: str) -> ThreadRecord | None:
        return await self.get(THREADS, id)

    async def update_thread(self, id: str, changes: Mapping[str, Any]) -> ThreadRecord | None:
        return await self.update(THREADS, id, changes)

    async def delete_thread(self, id: str) -> bool:
        """Delete a thread and everything that belongs to it (messages, later runs)."""
        with self.transaction() as db:
            if db.execute("DELETE FROM threads WHERE id = ?", (id,)).rowcount == 0:
                return False
            for child in THREAD_CHILDREN:
                db.execute(f"DELETE FROM {child} WHERE thread_id = ?", (id,))
            return True

    # -- messages ----------------------------------------------------------------------------

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


def _expect(table: Table[Any], expect: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    sql, params = "", []
    for column, value in expect.items():
        if column not in table.columns:
            raise ValueError(f"{table.name} has no column {column}")
        if isinstance(value, (tuple, list, set, frozenset)):
            options = list(value)
            sql += f" AND {column} IN ({', '.join('?' for _ in options)})"
            params += [table.encode(column, v) for v in options]
        else:
            sql += f" AND {column} = ?"
            params.append(table.encode(column, value))
    return sql, tuple(params)


def _where(table: Table[Any], id: str, scope: Mapping[str, str]) -> tuple[str, tuple[Any, ...]]:
    for column in scope:
        if column not in table.columns:
            raise ValueError(f"{table.name} has no column {column}")
    where = " AND ".join(["id = ?", *(f"{c} = ?" for c in scope)])
    return where, (id, *scope.values())
