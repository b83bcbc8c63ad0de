"""Throwaway kit projects whose models are scripted, for the run-level reliability tests.

Every user message ``task-N`` is answered ``done task-N`` (so a reply can be checked exactly);
the ``slow`` model waits ``delay_ms`` before each answer, keeping runs in flight.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

SCRIPT = """\
default: "no task here"
rules:
  - user: "^(task-[0-9]+)$"
    reply: "done {1}"
"""

KIT_YAML = """\
server:
  models:
    default: {backend: scripted, script: scripts/echo.yaml}
    slow: {backend: scripted, script: scripts/echo.yaml, delay_ms: %(delay)d}
"""

TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")


def write_project(folder: Path, *, delay_ms: int) -> Path:
    (folder / "scripts").mkdir(parents=True, exist_ok=True)
    (folder / "scripts" / "echo.yaml").write_text(SCRIPT, encoding="utf-8")
    (folder / "kit.yaml").write_text(KIT_YAML % {"delay": delay_ms}, encoding="utf-8")
    return folder


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(role, status, text) of each message, as stored."""
    return [
        (m["role"], m.get("status") or "", "".join(p["text"]["value"] for p in m["content"]))
        for m in messages
    ]


def thread_messages(http: httpx.Client, base: str, thread_id: str) -> list[dict[str, Any]]:
    """Every message of a thread, oldest first (pages followed)."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"order": "asc", "limit": 100}
        if after:
            params["after"] = after
        page = http.get(f"{base}/v1/threads/{thread_id}/messages", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["data"]
        if not body["has_more"]:
            return found
        after = body["last_id"]


def wait_runs(
    http: httpx.Client, base: str, runs: dict[str, str], limit: float
) -> dict[str, dict[str, Any]]:
    """Poll ``{run_id: thread_id}`` until every run is terminal; their final objects."""
    deadline = time.monotonic() + limit
    final: dict[str, dict[str, Any]] = {}
    while len(final) < len(runs):
        for run_id, thread_id in runs.items():
            if run_id in final:
                continue
            got = http.get(f"{base}/v1/threads/{thread_id}/runs/{run_id}")
            assert got.status_code == 200, got.text
            if got.json()["status"] in TERMINAL:
                final[run_id] = got.json()
        if len(final) < len(runs):
            assert time.monotonic() < deadline, (
                f"{len(runs) - len(final)} runs not terminal after {limit}s"
            )
            time.sleep(0.2)
    return final
