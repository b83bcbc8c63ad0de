from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
from pathlib import Path

import pytest

import assistant_kit
from assistant_kit.server.ids import new_id
from assistant_kit.server.store import migrations
from assistant_kit.server.store.base import (
    Conflict,
    CursorNotFound,
    PageQuery,
    StoreFull,
    StoreUnavailable,
)
from assistant_kit.server.store.migrations import Migration
from assistant_kit.server.store.records import (
    ASSISTANTS,
    AssistantRecord,
    MessageRecord,
    ThreadRecord,
)
from assistant_kit.server.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "sub" / "kit.db")
    s.open()
    yield s
    s.close()


def assistants(n: int, created_at: int = 1_700_000_000_000) -> list[AssistantRecord]:
    """``n`` assistants sharing one timestamp, so only insertion order tells them apart."""
    return [AssistantRecord(id=new_id(), created_at=created_at, model=f"m{i}") for i in range(n)]


def test_the_store_file_is_in_wal_mode_with_every_migration_recorded(store: SqliteStore) -> None:
    assert Path(store.database).exists()
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in store.db.execute("SELECT name FROM schema_migrations ORDER BY version")]
    assert names == [m.name for m in migrations.MIGRATIONS]
    assert store.schema_version() == len(migrations.MIGRATIONS)


async def test_reopening_keeps_rows_and_applies_no_migration_twice(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "kit.db")
    first.open()
    record = assistants(1)[0]
    await first.insert_assistant(record)
    first.close()
    second = SqliteStore(tmp_path / "kit.db")
    second.open()
    try:
        assert await second.get_assistant(record.id) == record
        assert second.schema_version() == len(migrations.MIGRATIONS)
        applied = second.db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
        assert applied == len(migrations.MIGRATIONS)
    finally:
        second.close()


async def test_a_new_migration_is_applied_once_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = SqliteStore(tmp_path / "kit.db")
    first.open()  # the shipped migrations
    first.close()
    notes = Migration(
        "m999_add_notes",
        "CREATE TABLE notes (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);"
        "CREATE INDEX notes_id ON notes (id)",
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, notes])
    for time in range(2):  # opened twice: applied the first time only
        store = SqliteStore(tmp_path / "kit.db")
        store.open()
        try:
            assert store.schema_version() == len(migrations.MIGRATIONS)
            rows = store.db.execute("SELECT name FROM schema_migrations").fetchall()
            assert [r[0] for r in rows].count("m999_add_notes") == 1
            store.db.execute("INSERT INTO notes (id) VALUES (?)", (f"note {time}",))
        finally:
            store.close()


async def test_a_failing_migration_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration("m999_broken", "CREATE TABLE half (id TEXT); SELECT nope FROM nowhere")
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    with pytest.raises(StoreUnavailable, match="nowhere"):
        SqliteStore(tmp_path / "kit.db").open()
    db = sqlite3.connect(tmp_path / "kit.db", isolation_level=None)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "half" not in tables
        count = db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
        assert count == len(migrations.MIGRATIONS) - 1
    finally:
        db.close()


async def test_equal_timestamps_list_in_insertion_order_both_ways(store: SqliteStore) -> None:
    records = assistants(5)
    for record in records:
        await store.insert_assistant(record)
    asc = await store.list_assistants(PageQuery(limit=10, order="asc"))
    desc = await store.list_assistants(PageQuery(limit=10, order="desc"))
    assert [a.id for a in asc.items] == [r.id for r in records]
    assert [a.id for a in desc.items] == [r.id for r in reversed(records)]
    assert not asc.has_more


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_after_and_before_walk_45_objects_in_pages_of_20(
    store: SqliteStore, order: str
) -> None:
    records = assistants(45)
    await store.insert(ASSISTANTS, *records)
    expected = [r.id for r in (records if order == "asc" else list(reversed(records)))]

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await store.list_assistants(PageQuery(limit=20, order=order, after=after))
        seen += [a.id for a in page.items]
        pages += 1
        if not page.has_more:
            break
        after = page.items[-1].id
    assert seen == expected
    assert pages == 3

    back: list[str] = []
    before = expected[-1]
    while True:
        page = await store.list_assistants(PageQuery(limit=20, order=order, before=before))
        back = [a.id for a in page.items] + back
        if not page.has_more:
            break
        before = page.items[0].id
    assert back == expected[:-1]


async def test_an_unknown_cursor_is_reported(store: SqliteStore) -> None:
    with pytest.raises(CursorNotFound) as info:
        await store.list_assistants(PageQuery(after=new_id()))
    assert info.value.param == "after"


async def test_deleting_a_thread_deletes_its_messages(store: SqliteStore) -> None:
    thread = ThreadRecord(id=new_id(), created_at=1)
    other = ThreadRecord(id=new_id(), created_at=1)
    messages = [
        MessageRecord(id=new_id(), thread_id=t.id, created_at=1, role="user", content=[])
        for t in (thread, thread, other)
    ]
    await store.insert_thread(thread, messages[:2])
    await store.insert_thread(other, messages[2:])
    assert await store.delete_thread(thread.id)
    assert not await store.delete_thread(thread.id)
    count = store.db.execute("SELECT COUNT(*) FROM messages WHERE thread_id = ?", (thread.id,))
    assert count.fetchone()[0] == 0
    assert await store.get_message(other.id, messages[2].id) == messages[2]


async def test_a_message_is_only_found_under_its_thread(store: SqliteStore) -> None:
    thread = ThreadRecord(id=new_id(), created_at=1)
    message = MessageRecord(id=new_id(), thread_id=thread.id, created_at=1, role="user", content=[])
    await store.insert_thread(thread, [message])
    assert await store.get_message(thread.id, message.id) == message
    assert await store.get_message(new_id(), message.id) is None


async def test_updates_change_only_the_given_columns(store: SqliteStore) -> None:
    record = AssistantRecord(id=new_id(), created_at=5, model="a", name="n", metadata={"k": "v"})
    await store.insert_assistant(record)
    updated = await store.update_assistant(record.id, {"model": "b", "tools": [{"type": "x"}]})
    assert updated == AssistantRecord(
        id=record.id, created_at=5, model="b", name="n", metadata={"k": "v"}, tools=[{"type": "x"}]
    )
    assert await store.update_assistant(new_id(), {"model": "c"}) is None
    with pytest.raises(ValueError):
        await store.update_assistant(record.id, {"id": "x"})


async def test_concurrent_writers_lose_nothing(store: SqliteStore) -> None:
    records = assistants(200)
    await asyncio.gather(*(store.insert_assistant(r) for r in records))
    assert store.db.execute("SELECT COUNT(*) FROM assistants").fetchone()[0] == 200


async def test_writers_on_threads_are_serialised(store: SqliteStore) -> None:
    records = assistants(100)

    def insert_all(chunk: list[AssistantRecord]) -> None:
        for record in chunk:
            asyncio.run(store.insert_assistant(record))

    await asyncio.gather(
        asyncio.to_thread(insert_all, records[:50]), asyncio.to_thread(insert_all, records[50:])
    )
    assert store.db.execute("SELECT COUNT(*) FROM assistants").fetchone()[0] == 100


def test_an_in_memory_store_works_without_a_file() -> None:
    s = SqliteStore(":memory:")
    s.open()
    try:
        assert s.schema_version() == len(migrations.MIGRATIONS)
    finally:
        s.close()


async def test_a_conditional_update_only_moves_from_the_expected_state(store: SqliteStore) -> None:
    record = AssistantRecord(id=new_id(), created_at=1, model="a")
    await store.insert_assistant(record)
    moved = await store.update(ASSISTANTS, record.id, {"model": "b"}, expect={"model": "a"})
    assert moved is not None and moved.model == "b"
    assert await store.update(ASSISTANTS, record.id, {"model": "c"}, expect={"model": "a"}) is None
    either = await store.update(ASSISTANTS, record.id, {"model": "d"}, expect={"model": ("a", "b")})
    assert either is not None and either.model == "d"
    assert await store.update(ASSISTANTS, record.id, {}, expect={"model": "x"}) is None
    assert (await store.get_assistant(record.id)).model == "d"


_WRITER = """
import asyncio, sys
from assistant_kit.server.ids import new_id
from assistant_kit.server.store.records import ASSISTANTS, AssistantRecord
from assistant_kit.server.store.sqlite import SqliteStore

async def main() -> None:
    store = SqliteStore(sys.argv[1])
    store.open()
    for i in range(3000):
        # read, then write, in one transaction, while another process does the same
        with store.transaction() as tx:
            tx.active_run("nothing")
            tx.insert(ASSISTANTS, AssistantRecord(id=new_id(), created_at=i, model="m"))
    store.close()

asyncio.run(main())
"""


def test_two_processes_writing_one_file_both_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    database = tmp_path / "shared.db"
    SqliteStore(database).open()  # migrate once, as `kit serve` would have
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(database)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    errors = [w.communicate(timeout=120)[1].decode() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errors
    count = sqlite3.connect(database).execute("SELECT COUNT(*) FROM assistants").fetchone()[0]
    assert count == 6000


async def test_a_full_store_raises_store_full_and_keeps_nothing_of_the_unit_of_work(
    store: SqliteStore,
) -> None:
    kept = assistants(1)[0]
    await store.insert_assistant(kept)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    big = [AssistantRecord(id=new_id(), created_at=2, model="m", instructions="x" * 9000)]
    with pytest.raises(StoreFull):
        await store.insert(ASSISTANTS, *big)
    store.db.execute("PRAGMA max_page_count = 1073741823")
    listed = await store.list_assistants(PageQuery(limit=10))
    assert [a.id for a in listed.items] == [kept.id]
    await store.insert(ASSISTANTS, *big)  # takes writes again, in a fresh transaction


async def test_a_read_only_store_raises_store_unavailable_saying_so(store: SqliteStore) -> None:
    store.db.execute("PRAGMA query_only = 1")
    with pytest.raises(StoreUnavailable) as info:
        await store.insert_assistant(assistants(1)[0])
    assert info.value.read_only
    assert (await store.list_assistants(PageQuery())).items == []


def test_a_file_that_is_not_a_database_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "kit.db").write_bytes(b"not a database " * 20)
    with pytest.raises(StoreUnavailable, match="not a database"):
        SqliteStore(tmp_path / "kit.db").open()


def test_one_store_on_a_file_claims_the_reaper_until_it_closes(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "kit.db"), SqliteStore(tmp_path / "kit.db")
    first.open()
    second.open()
    try:
        assert first.claim_reaper()
        assert first.claim_reaper()  # held: asking again keeps it
        assert not second.claim_reaper()
        first.close()
        assert second.claim_reaper()
    finally:
        first.close()
        second.close()


async def test_a_duplicate_id_is_a_conflict_and_changes_nothing(store: SqliteStore) -> None:
    record = assistants(1)[0]
    await store.insert_assistant(record)
    with pytest.raises(Conflict):
        await store.insert(ASSISTANTS, assistants(1)[0], dataclasses.replace(record, model="x"))
    listed = await store.list_assistants(PageQuery())
    assert listed.items == [record]


def test_only_the_sqlite_module_knows_sqlite() -> None:
    """The seam holds: everything else speaks ``Store`` / ``Tx`` and the typed errors."""
    package = Path(assistant_kit.__file__).parent
    knowing = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if re.search(r"\bsqlite3\b|BEGIN IMMEDIATE", path.read_text(encoding="utf-8"))
    )
    assert knowing == ["server/store/sqlite.py"]
