"""The ``Store`` on SQLite: one file in WAL mode (or ``":memory:"``), one connection.

The connection is owned by the event loop's thread: every call is a few microseconds of local
I/O, so it runs inline (no thread hop), and because nothing awaits inside a statement or a
``transaction()`` block, writes from concurrent requests are serialised by construction. A lock
still guards the connection so a worker thread (a model backend, a tool) may call in safely.
Nothing outside this module touches the connection or the lock; driver errors leave it as the
typed errors of ``store/base.py`` (``StoreFull``, ``StoreUnavailable``, ``Conflict``).

    store = SqliteStore(".kit/server.db")
    async with store.lifespan():
        run = await store.get(RUNS, run_id, thread_id=thread_id)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from assistant_kit.server.ids import now_ms
from assistant_kit.server.store import migrations
from assistant_kit.server.store.base import (
    Conflict,
    CursorNotFound,
    Page,
    PageQuery,
    Store,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from assistant_kit.server.store.records import (
    ACTIVE,
    FILES,
    MESSAGES,
    RUNS,
    STEPS,
    TERMINAL,
    THREAD_CHILDREN,
    THREADS,
    Event,
    EventEntry,
    FileRecord,
    MessageRecord,
    RunRecord,
    StepRecord,
    Table,
    ThreadRecord,
    dumps,
    loads,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory locks, every engine reaps
    fcntl = None  # type: ignore[assignment]

R = TypeVar("R")

log = logging.getLogger("assistant_kit.server.store")

#: SQLite's primary result codes (https://sqlite.org/rescode.html) that have an error of their own.
_SQLITE_READONLY = 8
_SQLITE_FULL = 13


class _Statements:
    """The statements every table needs, made once per table."""

    __slots__ = ("by_id", "insert", "select")

    def __init__(self, table: Table[Any]) -> None:
        columns = ", ".join(table.columns)
        self.select = f"SELECT {columns} FROM {table.name}"
        self.by_id = f"{self.select} WHERE id = ?"
        marks = ", ".join("?" for _ in table.columns)
        self.insert = f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"


_SQL: dict[str, _Statements] = {}


def _sql(table: Table[Any]) -> _Statements:
    found = _SQL.get(table.name)
    if found is None:
        found = _SQL[table.name] = _Statements(table)
    return found


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _typed(exc: sqlite3.Error) -> StoreError:
    """The typed error for what SQLite said (it has rolled the statement back)."""
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # Python 3.11+; before, only the text
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(text)
    if code == _SQLITE_FULL if code else "full" in text:
        return StoreFull(text)
    if code == _SQLITE_READONLY if code else "readonly" in text:
        return StoreUnavailable(text, read_only=True)
    return StoreUnavailable(text)


class _Reading:
    """``with store._reading() as db``: the connection under the store's lock, SQLite's errors
    as the store's (a class, not a generator: reads are the hot path)."""

    __slots__ = ("store",)

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        lock = self.store._lock
        lock.acquire()
        try:
            return self.store.db
        except BaseException:
            lock.release()
            raise

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        self.store._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise _typed(exc) from exc


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


def _migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations ``db`` has not seen yet, each in its own transaction; their names."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at INTEGER NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
    applied: list[str] = []
    for version, migration in enumerate(migrations.MIGRATIONS, start=1):
        if migration.name in done:
            continue
        db.execute("BEGIN")
        try:
            for statement in migration.statements():
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations (name, version, applied_at) VALUES (?, ?, ?)",
                (migration.name, version, now_ms()),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        applied.append(migration.name)
    return applied


class SqliteTx:
    """One transaction on the store's connection (the ``Tx`` of ``store/base.py``)."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def _one(self, table: Table[R], id: str) -> R | None:
        row = self.db.execute(_sql(table).by_id, (id,)).fetchone()
        return None if row is None else table.from_row(row)

    def _set(
        self,
        table: Table[Any],
        id: str,
        changes: Mapping[str, Any],
        extra: str = "",
        params: Sequence[Any] = (),
    ) -> bool:
        assignments = ", ".join(f"{c} = ?" for c in changes)
        values = [table.encode(c, v) for c, v in changes.items()]
        sql = f"UPDATE {table.name} SET {assignments} WHERE id = ?{extra}"
        return self.db.execute(sql, (*values, id, *params)).rowcount > 0

    def insert(self, table: Table[R], *records: R) -> None:
        self.db.executemany(_sql(table).insert, [table.to_row(r) for r in records])

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._one(RUNS, run_id)

    def set_run(
        self, run_id: str, changes: Mapping[str, Any], *, when: Sequence[str] | None = None
    ) -> bool:
        if when is None:
            return self._set(RUNS, run_id, changes)
        return self._set(RUNS, run_id, changes, f" AND status IN ({_marks(when)})", when)

    def active_run(self, thread_id: str) -> str | None:
        row = self.db.execute(
            f"SELECT id FROM runs WHERE thread_id = ? AND status IN ({_marks(ACTIVE)}) LIMIT 1",
            (thread_id, *ACTIVE),
        ).fetchone()
        return None if row is None else str(row[0])

    def get_step(self, step_id: str) -> StepRecord | None:
        return self._one(STEPS, step_id)

    def steps_in(self, run_id: str, status: str) -> list[StepRecord]:
        rows = self.db.execute(
            f"{_sql(STEPS).select} WHERE run_id = ? AND status = ? ORDER BY seq", (run_id, status)
        ).fetchall()
        return [STEPS.from_row(r) for r in rows]

    def insert_step(self, step: StepRecord) -> None:
        self.insert(STEPS, step)

    def set_step(self, step_id: str, changes: Mapping[str, Any]) -> None:
        self._set(STEPS, step_id, changes)

    def get_message(self, message_id: str) -> MessageRecord | None:
        return self._one(MESSAGES, message_id)

    def insert_message(self, message: MessageRecord) -> None:
        self.insert(MESSAGES, message)

    def set_message(self, message_id: str, changes: Mapping[str, Any]) -> None:
        self._set(MESSAGES, message_id, changes)

    def thread_position(self, thread_id: str) -> int:
        row = self.db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        return int(row[0])

    def append_events(self, run_id: str, thread_id: str, events: Iterable[EventEntry]) -> None:
        now = now_ms()
        self.db.executemany(
            "INSERT INTO run_events (run_id, thread_id, created_at, event, data) "
            "VALUES (?, ?, ?, ?, ?)",
            [(run_id, thread_id, now, name, dumps(data)) for name, data in events],
        )


class SqliteStore(Store):
    """The server's state in one SQLite file (WAL); ``":memory:"`` keeps nothing."""

    def __init__(self, database: str | Path) -> None:
        self.database = str(database)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._reaper_lock: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, set WAL mode and apply pending migrations."""
        if self._db is not None:
            return
        if self.database != ":memory:" and not self.database.startswith("file:"):
            _private_file(Path(self.database))
        db = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False, uri=True)
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            if self.database != ":memory:":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            _migrate(db)
        except sqlite3.Error as exc:  # not a database, locked, a migration that failed
            db.close()
            raise _typed(exc) from exc
        self._db = db

    def close(self) -> None:
        self.release_reaper()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[SqliteStore]:
        """Open for the life of an app: ``async with store.lifespan(): ...``."""
        self.open()
        try:
            yield self
        finally:
            self.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection, for diagnostics (``PRAGMA``s); statements go through
        ``transaction()`` and the operations below."""
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    def schema_version(self) -> int:
        with self._reading() as db:
            return int(db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0])

    def _reading(self) -> _Reading:
        return _Reading(self)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteTx]:
        """One atomic block of statements; do not await inside it."""
        with self._lock:
            db = self.db
            try:
                # IMMEDIATE takes the write lock up front, so a second process on the same file
                # waits (busy_timeout) instead of failing a read-then-write upgrade with "locked"
                db.execute("BEGIN IMMEDIATE")
                yield SqliteTx(db)
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:  # SQLite already rolled back after SQLITE_FULL and such
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _typed(exc) from exc
                raise

    def claim_reaper(self) -> bool:
        """An ``flock`` on ``<database>-engine.lock``; the OS drops it when its holder dies.

        A second process on the same file (``kit apply --target local`` beside ``kit serve``)
        would otherwise resume the first one's live runs as if a crash had left them."""
        if fcntl is None or self.database == ":memory:" or self.database.startswith("file:"):
            return True
        if self._reaper_lock is not None:
            return True
        fd = os.open(f"{self.database}-engine.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            log.info("another server holds %s: its runs are left to it", self.database)
            return False
        self._reaper_lock = fd
        return True

    def release_reaper(self) -> None:
        if self._reaper_lock is not None:
            os.close(self._reaper_lock)  # closing the descriptor releases the lock
            self._reaper_lock = None

    # -- any table ---------------------------------------------------------------------------

    async def insert(self, table: Table[R], *records: R) -> None:
        with self.transaction() as tx:
            tx.insert(table, *records)

    async def get(self, table: Table[R], id: str, **scope: str) -> R | None:
        where, params = _where(table, id, scope)
        with self._reading() as db:
            row = db.execute(f"{_sql(table).select} WHERE {where}", params).fetchone()
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
            with self.transaction() as tx:
                cursor = tx.db.execute(
                    f"UPDATE {table.name} SET {assignments} WHERE {where}{conditions}",
                    (*values, *params, *expected),
                )
                if cursor.rowcount == 0:
                    return None
        elif expect:
            with self._reading() as db:
                found = db.execute(
                    f"SELECT 1 FROM {table.name} WHERE {where}{conditions}", (*params, *expected)
                ).fetchone()
            if found is None:
                return None
        return await self.get(table, id, **scope)

    async def delete(self, table: Table[R], id: str, **scope: str) -> bool:
        where, params = _where(table, id, scope)
        with self.transaction() as tx:
            return tx.db.execute(f"DELETE FROM {table.name} WHERE {where}", params).rowcount > 0

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
        with self._reading() as db:
            for param, value, greater in (
                ("after", page.after, not descending),
                ("before", page.before, descending),
            ):
                if value is None:
                    continue
                key = db.execute(
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
            order = f"ORDER BY created_at {direction}, seq {direction}"
            rows = db.execute(
                f"{_sql(table).select}{where} {order} LIMIT ?", (*params, page.limit + 1)
            ).fetchall()
        has_more = len(rows) > page.limit
        items = [table.from_row(r) for r in rows[: page.limit]]
        if reverse:
            items.reverse()
        return Page(items, has_more)

    # -- assistants --------------------------------------------------------------------------

    # -- threads -----------------------------------------------------------------------------

    async def insert_thread(
        self, record: ThreadRecord, messages: Sequence[MessageRecord] = ()
    ) -> None:
        """Store a thread and its initial messages atomically."""
        with self.transaction() as tx:
            tx.insert(THREADS, record)
            if messages:
                tx.insert(MESSAGES, *messages)

    async def delete_thread(self, id: str) -> bool:
        """Delete a thread and everything that belongs to it (``THREAD_CHILDREN``)."""
        with self.transaction() as tx:
            if tx.db.execute("DELETE FROM threads WHERE id = ?", (id,)).rowcount == 0:
                return False
            for child in THREAD_CHILDREN:
                tx.db.execute(f"DELETE FROM {child} WHERE thread_id = ?", (id,))
            return True

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        run: RunRecord,
        *,
        thread: ThreadRecord | None = None,
        thread_messages: Sequence[MessageRecord] = (),
        messages: Sequence[MessageRecord] = (),
        events: Sequence[EventEntry] = (),
    ) -> str | None:
        with self.transaction() as tx:
            if thread is not None:
                tx.insert(THREADS, thread)
                tx.insert(MESSAGES, *thread_messages)
            else:
                blocker = tx.active_run(run.thread_id)
                if blocker is not None:
                    return blocker
            tx.insert(MESSAGES, *messages)
            tx.insert(RUNS, run)
            tx.append_events(run.id, run.thread_id, events)
        return None

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._reading() as db:
            row = db.execute(_sql(RUNS).by_id, (run_id,)).fetchone()
        return None if row is None else RUNS.from_row(row)

    def active_run(self, thread_id: str) -> str | None:
        with self._reading() as db:
            return SqliteTx(db).active_run(thread_id)

    def runs_in(
        self, statuses: Sequence[str], expires_before: int | None = None
    ) -> list[RunRecord]:
        sql = f"{_sql(RUNS).select} WHERE status IN ({_marks(statuses)})"
        params: list[Any] = list(statuses)
        if expires_before is not None:
            sql += " AND expires_at IS NOT NULL AND expires_at <= ?"
            params.append(expires_before)
        with self._reading() as db:
            rows = db.execute(sql + " ORDER BY seq", params).fetchall()
        return [RUNS.from_row(r) for r in rows]

    def steps(self, run_id: str) -> list[StepRecord]:
        with self._reading() as db:
            rows = db.execute(
                f"{_sql(STEPS).select} WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [STEPS.from_row(r) for r in rows]

    def history(
        self, thread_id: str, newest: int | None = None, after: int = 0
    ) -> tuple[list[tuple[int, MessageRecord]], list[StepRecord]]:
        with self._reading() as db:
            columns = f"seq, {', '.join(MESSAGES.columns)}"
            if newest is None:
                rows = db.execute(
                    f"SELECT {columns} FROM messages WHERE thread_id = ? AND seq > ? ORDER BY seq",
                    (thread_id, after),
                ).fetchall()
            else:
                rows = db.execute(
                    f"SELECT {columns} FROM messages WHERE thread_id = ? AND seq > ? "
                    "ORDER BY seq DESC LIMIT ?",
                    (thread_id, after, newest),
                ).fetchall()[::-1]
            # Tool steps go after the message they followed: those after the oldest one loaded
            # when only the newest were (else every one after ``after``).
            cut = rows and newest is not None and len(rows) == newest
            since = int(rows[0][0]) if cut else after
            step_rows = db.execute(
                f"{_sql(STEPS).select} WHERE thread_id = ? AND type = 'tool_calls' "
                "AND thread_position >= ? ORDER BY seq",
                (thread_id, since),
            ).fetchall()
        messages = [(int(r[0]), MESSAGES.from_row(r[1:])) for r in rows]
        return messages, [STEPS.from_row(r) for r in step_rows]

    def events_after(self, run_id: str, after: int, limit: int = 500) -> list[Event]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT seq, event, data FROM run_events WHERE run_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (run_id, after, limit),
            ).fetchall()
        return [Event(int(s), run_id, e, loads(d)) for s, e, d in rows]

    def last_event_seq(self, run_id: str) -> int:
        with self._reading() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = ?", (run_id,)
            ).fetchone()
        return int(row[0])

    def prune_events(self, before_ms: int) -> int:
        with self.transaction() as tx:
            return tx.db.execute(
                "DELETE FROM run_events WHERE created_at < ? AND run_id IN "
                f"(SELECT id FROM runs WHERE status IN ({_marks(TERMINAL)}))",
                (before_ms, *TERMINAL),
            ).rowcount

    # -- files -------------------------------------------------------------------------------

    async def insert_file(self, record: FileRecord, data: bytes) -> None:
        columns = (*FILES.columns, "data")
        with self.transaction() as tx:
            tx.db.execute(
                f"INSERT INTO files ({', '.join(columns)}) VALUES ({_marks(columns)})",
                (*FILES.to_row(record), bytes(data)),
            )

    async def file_content(self, id: str) -> bytes | None:
        with self._reading() as db:
            row = db.execute("SELECT data FROM files WHERE id = ?", (id,)).fetchone()
        return None if row is None else bytes(row[0])


def _expect(table: Table[Any], expect: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    sql, params = "", []
    for column, value in expect.items():
        if column not in table.columns:
            raise ValueError(f"{table.name} has no column {column}")
        if isinstance(value, (tuple, list, set, frozenset)):
            options = list(value)
            sql += f" AND {column} IN ({_marks(options)})"
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
