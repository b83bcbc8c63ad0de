"""Forward-only schema migrations of the server store (llm's style).

Each migration is a function in ``MIGRATIONS``, applied once, in order, and recorded by name in
``schema_migrations``; the schema version is the number of applied migrations. Never edit a
migration that has shipped: add a new one at the end::

    @migration
    def m002_runs(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE runs (...)")

Ordering columns: every table has ``seq`` (an always-increasing integer key; ``BIGSERIAL`` on
Postgres) next to ``created_at`` (Unix ms), and lists order by ``(created_at, seq)`` so objects made
in the same millisecond keep their insertion order. JSON values are stored as text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from assistant_kit.server.ids import now_ms

Migration = Callable[[sqlite3.Connection], None]

#: Every migration, oldest first.
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration."""
    MIGRATIONS.append(fn)
    return fn


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations ``db`` has not seen yet; return their names."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_at INTEGER NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT name FROM schema_migrations")}
    applied: list[str] = []
    for version, fn in enumerate(MIGRATIONS, start=1):
        if fn.__name__ in done:
            continue
        db.execute("BEGIN")
        try:
            fn(db)
            db.execute(
                "INSERT INTO schema_migrations (name, version, applied_at) VALUES (?, ?, ?)",
                (fn.__name__, version, now_ms()),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        applied.append(fn.__name__)
    return applied


def schema_version(db: sqlite3.Connection) -> int:
    """How many migrations ``db`` has applied."""
    row = db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
    return int(row[0])


@migration
def m001_assistants_threads_messages(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE assistants (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            model TEXT NOT NULL,
            name TEXT,
            description TEXT,
            instructions TEXT,
            tools TEXT NOT NULL,
            file_ids TEXT NOT NULL,
            tool_resources TEXT NOT NULL,
            metadata TEXT NOT NULL,
            temperature REAL,
            top_p REAL,
            top_k INTEGER,
            max_tokens INTEGER,
            response_format TEXT
        )"""
    )
    db.execute("CREATE INDEX assistants_order ON assistants (created_at, seq)")
    db.execute(
        """CREATE TABLE threads (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            metadata TEXT NOT NULL,
            tool_resources TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE messages (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            assistant_id TEXT,
            run_id TEXT,
            file_ids TEXT NOT NULL,
            attachments TEXT NOT NULL,
            metadata TEXT NOT NULL,
            status TEXT NOT NULL,
            incomplete_details TEXT,
            completed_at BIGINT,
            incomplete_at BIGINT
        )"""
    )
    db.execute("CREATE INDEX messages_order ON messages (thread_id, created_at, seq)")


@migration
def m002_runs_steps_events(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE runs (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            status TEXT NOT NULL,
            model TEXT NOT NULL,
            instructions TEXT NOT NULL,
            additional_instructions TEXT,
            tools TEXT NOT NULL,
            file_ids TEXT NOT NULL,
            metadata TEXT NOT NULL,
            temperature REAL,
            top_p REAL,
            top_k INTEGER,
            max_tokens INTEGER,
            max_prompt_tokens INTEGER,
            max_completion_tokens INTEGER,
            truncation_strategy TEXT,
            tool_choice TEXT,
            parallel_tool_calls INTEGER NOT NULL,
            response_format TEXT,
            required_action TEXT,
            last_error TEXT,
            incomplete_details TEXT,
            usage TEXT,
            started_at BIGINT,
            expires_at BIGINT,
            cancelled_at BIGINT,
            failed_at BIGINT,
            completed_at BIGINT,
            incomplete_at BIGINT,
            model_calls INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX runs_order ON runs (thread_id, created_at, seq)")
    db.execute("CREATE INDEX runs_status ON runs (status, expires_at)")
    db.execute(
        """CREATE TABLE run_steps (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            run_id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            assistant_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            step_details TEXT NOT NULL,
            last_error TEXT,
            usage TEXT,
            metadata TEXT NOT NULL,
            completed_at BIGINT,
            cancelled_at BIGINT,
            failed_at BIGINT,
            expired_at BIGINT,
            thread_position INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX run_steps_order ON run_steps (run_id, created_at, seq)")
    db.execute("CREATE INDEX run_steps_thread ON run_steps (thread_id, seq)")
    db.execute(
        """CREATE TABLE run_events (
            seq INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            event TEXT NOT NULL,
            data TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX run_events_run ON run_events (run_id, seq)")
    db.execute("CREATE INDEX run_events_age ON run_events (created_at)")


@migration
def m003_files(db: sqlite3.Connection) -> None:
    """Files the built-in tools make (images), bytes included; deleted with their thread."""
    db.execute(
        """CREATE TABLE files (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            thread_id TEXT,
            run_id TEXT,
            data BLOB NOT NULL
        )"""
    )
    db.execute("CREATE INDEX files_order ON files (created_at, seq)")
    db.execute("CREATE INDEX files_thread ON files (thread_id)")
