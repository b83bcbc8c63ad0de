"""Ctrl-C as a user presses it: SIGINT to a real `kit` process on the embedded target.

`kit test` and `kit apply` report what finished, write their reports and exit 130 with nothing
left running; `kit chat` cancels the reply and goes on; the next command never resumes the runs of
a `kit` process that is gone."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")


def make_project(root: Path, *, slow_ms: int = 20_000) -> Path:
    """`quick` answers at once; `slow` takes ``slow_ms`` per model call."""
    (root / "assistants").mkdir(parents=True)
    for name, model, tests in (("quick", "fast-model", 1), ("slow", "slow-model", 2)):
        spec = {
            "name": name,
            "model": model,
            "instructions": f"You are {name}.",
            "tests": [
                {"name": f"t{i}", "turns": [{"user": "hello", "expect": [{"contains": "Hi"}]}]}
                for i in range(tests)
            ],
        }
        (root / "assistants" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    kit = {
        "project": "interrupts",
        "server": {
            "models": {
                "fast-model": {"backend": "scripted", "default": "Hi there."},
                "slow-model": {"backend": "scripted", "default": "Hi!", "delay_ms": slow_ms},
            }
        },
    }
    (root / "kit.yaml").write_text(yaml.safe_dump(kit, sort_keys=False))
    return root


def start(cwd: Path, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "assistant_kit", *args],
        cwd=cwd,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant_kit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def runs(project: Path, *statuses: str, model: str = "%") -> list[str]:
    db = sqlite3.connect(project / ".kit" / "server.db", timeout=10)
    try:
        marks = ",".join("?" * len(statuses))
        rows = db.execute(
            f"SELECT status FROM runs WHERE status IN ({marks}) AND model LIKE ?",
            (*statuses, model),
        )
        return [row[0] for row in rows]
    except sqlite3.OperationalError:  # the store is not there yet
        return []
    finally:
        db.close()


def wait_for_active_run(project: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if runs(project, "in_progress", "queued", model="slow-model"):
            return
        time.sleep(0.05)
    raise AssertionError("no run started")


def test_ctrl_c_in_kit_test_reports_what_finished_and_exits_130(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert run(project, "apply", "--yes").returncode == 0
    process = start(project, "test", "-j", "1", "--json", "r.json", "--junit", "j.xml")
    wait_for_active_run(project, process)
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert time.monotonic() - started < 15  # the 20 s model call was not waited for
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[0].startswith("PASS   quick::t0")
    assert (
        "Interrupted. 1 of 3 tests finished; their runs were cancelled and their threads deleted."
        in lines
    )
    assert "1 test: 1 passed, 0 failed, 0 errors, 0 skipped, 2 not run in " in out
    report = json.loads((project / "r.json").read_text())
    assert report["summary"]["interrupted"] is True and report["summary"]["not_run"] == 2
    assert (project / "j.xml").is_file()
    assert runs(project, *ACTIVE) == []  # the slow run was cancelled, not left going
    db = sqlite3.connect(project / ".kit" / "server.db")
    assert db.execute("SELECT COUNT(*) FROM threads").fetchone() == (0,)
    db.close()


def test_the_next_command_cancels_runs_a_killed_kit_left(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    assert run(project, "apply", "--yes").returncode == 0
    process = start(project, "test", "slow", "-j", "1")
    wait_for_active_run(project, process)
    process.kill()  # no chance to clean up: a closed terminal, an OOM kill
    process.communicate()
    assert runs(project, "in_progress", "queued")
    started = time.monotonic()
    planned = run(project, "plan")
    assert planned.returncode == 0, planned.stderr
    assert time.monotonic() - started < 15  # the 20 s run was not resumed
    assert runs(project, "in_progress", "queued") == []
    assert runs(project, "cancelled")


def test_ctrl_c_in_kit_apply_says_how_far_it_got(tmp_path: Path) -> None:
    (tmp_path / "assistants").mkdir()
    for i in range(300):
        (tmp_path / "assistants" / f"bot-{i:03}.yaml").write_text(
            f"name: bot-{i:03}\nmodel: m\ninstructions: Bot {i}.\n"
        )
    (tmp_path / "kit.yaml").write_text("project: many\n")
    process = start(tmp_path, "apply", "--yes", "--parallelism", "1", "--json", "out.json")
    assert process.stdout is not None
    while '": created (' not in process.stdout.readline():  # the first change done
        assert process.poll() is None
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    data = json.loads((tmp_path / "out.json").read_text())
    done = len(data["applied"])
    assert data["interrupted"] is True and 0 < done < 300
    assert out.strip().splitlines()[-1] == (
        f"Interrupted: {done} of 300 applied ({done} created, 0 updated, 0 deleted): "
        "run `kit apply` again to finish."
    )
    again = run(tmp_path, "apply", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    # a create cut off half-way may have gone through: the plan then finds it, never twice
    finished = [line for line in again.stdout.splitlines() if line.startswith("Apply complete")]
    assert finished in (
        [f"Apply complete: {300 - done} created, 0 updated, 0 deleted."],
        [f"Apply complete: {299 - done} created, 0 updated, 0 deleted."],
    )
    assert run(tmp_path, "plan").stdout.startswith("No changes.")


def test_ctrl_c_in_kit_chat_cancels_the_reply_and_a_second_one_at_the_prompt_ends_it(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path)
    assert run(project, "apply", "--yes").returncode == 0
    process = start(project, "chat", "slow", stdin=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write("hello\n")
    process.stdin.flush()
    wait_for_active_run(project, process)
    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while runs(project, "in_progress", "queued", "cancelling") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None  # still chatting
    process.stdin.write("/thread\n")
    process.stdin.flush()
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # at the prompt: the end
    process.wait(timeout=30)  # before communicate() closes stdin (an end of input: exit 0)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "(cancelled: Ctrl-C again to end the chat)" in err
    assert "Traceback" not in err
    assert "thread_" in out
    assert runs(project, *ACTIVE) == []
    assert runs(project, "cancelled")
