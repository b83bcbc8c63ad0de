"""Every lookup the server makes by thread or run is an index search, never a table scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant_kit.server.store.records import THREAD_CHILDREN
from assistant_kit.server.store.sqlite import SqliteStore

#: The statements (by thread, by run) whose plans must use an index.
LOOKUPS = [
    *(f"DELETE FROM {child} WHERE thread_id = 'x'" for child in THREAD_CHILDREN),
    "SELECT * FROM messages WHERE thread_id = 'x' ORDER BY seq DESC LIMIT 20",
    "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = 'x'",
    "SELECT * FROM run_steps WHERE thread_id = 'x' AND type = 'tool_calls' "
    "AND thread_position >= 5 ORDER BY seq",
    "SELECT * FROM run_events WHERE run_id = 'r' AND seq > 0 ORDER BY seq LIMIT 500",
    "SELECT id FROM runs WHERE thread_id = 'x' AND status IN ('queued', 'in_progress') LIMIT 1",
    "DELETE FROM run_events WHERE created_at < 5 AND run_id IN "
    "(SELECT id FROM runs WHERE status IN ('completed', 'failed'))",
]


@pytest.mark.parametrize("sql", LOOKUPS)
def test_lookup_uses_an_index(tmp_path: Path, sql: str) -> None:
    store = SqliteStore(tmp_path / "kit.db")
    store.open()
    try:
        plan = [row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
    finally:
        store.close()
    scans = [step for step in plan if step.startswith("SCAN") and "USING" not in step]
    assert not scans, f"{sql}: {plan}"
