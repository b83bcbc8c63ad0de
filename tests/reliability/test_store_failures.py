"""A full or read-only database: a clear 5xx in the dialect's envelope, reads still served,
nothing corrupted, everything back to normal once the store takes writes again.

"Full" is SQLite's own ``SQLITE_FULL``, provoked with ``PRAGMA max_page_count`` on the server's
connection (what a full disk gives, without filling one); "read-only" is ``PRAGMA query_only``
on that connection (``SQLITE_READONLY``, what a file that turned read-only gives).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from kit_fuzz_http import ApiUnderTest, error_schemas

UNLIMITED = 1_073_741_823
BIG = "x" * 9_000  # over two pages, under the fuzz app's 16 KiB body limit


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiUnderTest]:
    models = {"default": {"backend": "scripted", "delay_ms": 200}}
    under_test = ApiUnderTest(tmp_path / "kit.db", {"models": models, "run_expiry_s": 60})
    yield under_test
    under_test.close()


def connection(api: ApiUnderTest) -> sqlite3.Connection:
    db: sqlite3.Connection = api.app.state.context.store.db
    return db


def fill_up(api: ApiUnderTest) -> None:
    db = connection(api)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def check_refusal(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    dialect = "dashscope" if response.request.url.path.startswith("/api/v1/") else "openai"
    jsonschema.validate(body, error_schemas()[dialect])
    message = body["message"] if dialect == "dashscope" else body["error"]["message"]
    assert words in message and "nothing was written" in message
    if dialect == "dashscope":
        assert body["code"] == {507: "InsufficientStorage", 503: "ServiceUnavailable"}[status]


def writes(api: ApiUnderTest, thread: str, message: str, assistant: str) -> list[httpx.Response]:
    """One write of every kind, in both dialects, each big enough to need a new page."""
    answers = []
    for prefix in ("/v1", "/api/v1"):
        answers += [
            api.send("POST", f"{prefix}/assistants", json={"model": "m", "instructions": BIG}),
            api.send("POST", f"{prefix}/threads", json={"messages": [{"content": BIG}]}),
            api.send("POST", f"{prefix}/threads/{thread}/messages", json={"content": BIG}),
            api.send("POST", f"{prefix}/assistants/{assistant}", json={"instructions": BIG}),
            api.send(
                "POST",
                f"{prefix}/threads/{thread}/messages/{message}",
                json={"metadata": {f"k{i}": BIG[:500] for i in range(16)}},
            ),
            api.send(
                "POST",
                f"{prefix}/threads/runs",
                json={"assistant_id": assistant, "thread": {"messages": [{"content": BIG}]}},
            ),
        ]
    return answers


def snapshot(api: ApiUnderTest, thread: str) -> list[dict]:
    listed = api.send("GET", f"/v1/threads/{thread}/messages?order=asc&limit=100")
    assert listed.status_code == 200
    return listed.json()["data"]


@pytest.mark.parametrize(
    ("break_it", "status", "words"),
    [
        pytest.param(fill_up, 507, "database is full", id="full"),
        pytest.param(
            lambda api: connection(api).execute("PRAGMA query_only = 1"),
            503,
            "database is read-only",
            id="read-only",
        ),
    ],
)
def test_a_store_that_refuses_writes_gives_a_clear_5xx_and_loses_nothing(
    api: ApiUnderTest, break_it, status: int, words: str
) -> None:
    assistant = api.send("POST", "/v1/assistants", json={"model": "m", "name": "kept"}).json()
    thread = api.send("POST", "/v1/threads", json={"messages": [{"content": "first"}]}).json()
    message = api.send(
        "POST", f"/v1/threads/{thread['id']}/messages", json={"content": "second"}
    ).json()
    before = snapshot(api, thread["id"])

    break_it(api)
    for answer in writes(api, thread["id"], message["id"], assistant["id"]):
        check_refusal(answer, status, words)
    # reads are still served, and show exactly what was there
    assert snapshot(api, thread["id"]) == before
    got = api.send("GET", f"/api/v1/assistants/{assistant['id']}")
    assert got.status_code == 200 and got.json()["name"] == "kept"

    db = connection(api)
    db.execute(f"PRAGMA max_page_count = {UNLIMITED}")
    db.execute("PRAGMA query_only = 0")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    for answer in writes(api, thread["id"], message["id"], assistant["id"]):
        assert answer.status_code == 200, answer.text
    after = snapshot(api, thread["id"])
    assert [m["id"] for m in after[:2]] == [m["id"] for m in before]
    assert [m["content"][0]["text"]["value"] for m in after] == ["first", "second", BIG, BIG]


def test_a_run_whose_writes_fail_ends_once_the_store_recovers(api: ApiUnderTest) -> None:
    assistant = api.send("POST", "/v1/assistants", json={"model": "m"}).json()
    body = {"assistant_id": assistant["id"], "thread": {"messages": [{"content": "hi"}]}}
    run = api.send("POST", "/v1/threads/runs", json=body).json()
    fill_up(api)  # the run's reply (200 ms away) cannot be written
    time.sleep(1.0)
    url = f"/v1/threads/{run['thread_id']}/runs/{run['id']}"
    assert api.send("GET", url).json()["status"] in ("queued", "in_progress")
    connection(api).execute(f"PRAGMA max_page_count = {UNLIMITED}")
    deadline = time.monotonic() + 10
    while (got := api.send("GET", url).json())["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the run is stuck after the store recovered"
        time.sleep(0.1)
    assert got["status"] == "failed"
    assert "could not write" in got["last_error"]["message"]
    # the thread is free again
    again = api.send("POST", f"/v1/threads/{run['thread_id']}/runs", json=body)
    assert again.status_code == 200, again.text
    assert connection(api).execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_the_file_on_disk_is_intact_after_refused_writes(tmp_path: Path) -> None:
    database = tmp_path / "kit.db"
    api = ApiUnderTest(database)
    try:
        thread = api.send("POST", "/v1/threads", json={"messages": [{"content": "kept"}]}).json()
        fill_up(api)
        for _ in range(5):
            refused = api.send(
                "POST", f"/v1/threads/{thread['id']}/messages", json={"content": BIG}
            )
            assert refused.status_code == 507
    finally:
        api.close()
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        texts = db.execute("SELECT content FROM messages").fetchall()
    assert any("kept" in text for (text,) in texts)
    assert not any(BIG in text for (text,) in texts)
