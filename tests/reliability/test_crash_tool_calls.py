"""kill -9 of ``kit serve`` while a code cell runs: after the restart the cell is not run a second
time; the model is told its call was interrupted and the run goes on from there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kit_processes import KitServe

pytestmark = pytest.mark.slow

#: A cell that takes long enough to be killed in, and says when it got to its end.
CELL = "import time\nprint('cell started', flush=True)\ntime.sleep(4)\nprint('cell finished')\n"


def write_project(folder: Path) -> None:
    script = {
        "rules": [
            {
                "user": "^slow cell$",
                "tool_calls": [{"name": "code_interpreter", "arguments": {"code": CELL}}],
            },
            {"after_tool": "code_interpreter", "reply": "The code said: {output}"},
        ]
    }
    (folder / "script.yaml").write_text(yaml.safe_dump(script), encoding="utf-8")
    kit = {
        "server": {
            "models": {"default": {"backend": "scripted", "script": "script.yaml"}},
            "tools": {"code_interpreter": {"timeout_s": 30, "cpu_s": 5, "idle_timeout_s": 60}},
        }
    }
    (folder / "kit.yaml").write_text(yaml.safe_dump(kit), encoding="utf-8")


def tool_steps(http: httpx.Client, base: str, thread_id: str, run_id: str) -> list[dict[str, Any]]:
    steps = http.get(f"{base}/v1/threads/{thread_id}/runs/{run_id}/steps?order=asc").json()
    return [step for step in steps["data"] if step["type"] == "tool_calls"]


def code_calls(http: httpx.Client, base: str, thread_id: str, run_id: str) -> list[dict[str, Any]]:
    steps = http.get(f"{base}/v1/threads/{thread_id}/runs/{run_id}/steps?order=asc").json()
    return [
        call
        for step in steps["data"]
        if step["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
    ]


def test_a_code_cell_cut_off_by_kill_9_is_not_run_again(tmp_path: Path) -> None:
    write_project(tmp_path)
    database = str(tmp_path / "kit.db")
    server = KitServe(tmp_path, database=database)
    with server:
        base = server.url("")
        with httpx.Client(headers=server.auth, timeout=30, trust_env=False) as http:
            bot = http.post(
                f"{base}/v1/assistants",
                json={"model": "m", "tools": [{"type": "code_interpreter"}]},
            ).json()
            body = {"assistant_id": bot["id"], "thread": {"messages": [{"content": "slow cell"}]}}
            run = http.post(f"{base}/v1/threads/runs", json=body).json()
            thread_id, run_id = run["thread_id"], run["id"]
            deadline = time.monotonic() + 30
            while not tool_steps(http, base, thread_id, run_id):
                assert time.monotonic() < deadline, "the cell never started"
                time.sleep(0.05)
            time.sleep(1)  # inside time.sleep(4)
            status = http.get(f"{base}/v1/threads/{thread_id}/runs/{run_id}").json()["status"]
        server.kill()
    assert status == "in_progress"

    with KitServe(tmp_path, database=database) as again:
        base = again.url("")
        with httpx.Client(headers=again.auth, timeout=30, trust_env=False) as http:
            deadline = time.monotonic() + 60
            while True:
                run = http.get(f"{base}/v1/threads/{thread_id}/runs/{run_id}").json()
                if run["status"] not in ("queued", "in_progress"):
                    break
                assert time.monotonic() < deadline, run
                time.sleep(0.2)
            calls = code_calls(http, base, thread_id, run_id)
            messages = http.get(f"{base}/v1/threads/{thread_id}/messages").json()["data"]
    assert run["status"] == "completed", run
    # one call, made before the crash: its output says it was interrupted; nothing ran it again
    assert len(calls) == 1, calls
    [logs] = [o["logs"] for o in calls[0]["code_interpreter"]["outputs"] if o["type"] == "logs"]
    assert "stopped while this call was running" in logs and "not run again" in logs
    reply = messages[0]["content"][0]["text"]["value"]
    assert reply.startswith("The code said: error: the server stopped while this call")
    assert "cell finished" not in logs + reply
