"""Sandbox workers never outlive their server: ``kill -9`` on the server ends every worker and
everything its cells started, and a server starting up kills workers whose server is gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant_kit.server.tools.sandbox_launch import reap_orphans

REPO = Path(__file__).resolve().parents[3]

#: A server stand-in: two threads' workers, one idle, one running a cell that started processes
#: of its own (one in a session of its own) and sleeps; prints "ready" once both are running.
SERVER = """
import asyncio, sys
from assistant_kit.server.tools.sandbox import LocalSandbox, SandboxLimits

LONG = '''
import os, subprocess, time
subprocess.Popen(['sleep', '600'])
if os.fork() == 0:
    os.setsid()
    time.sleep(600)
print('started', flush=True)
time.sleep(600)
'''

async def main() -> None:
    sandbox = LocalSandbox(SandboxLimits(timeout_s=900, cpu_s=900))
    assert (await sandbox.execute("idle", "x = 1")).error is None
    running = asyncio.ensure_future(sandbox.execute("busy", LONG))
    await asyncio.sleep(1.5)
    print("ready", flush=True)
    await running

asyncio.run(main())
"""


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{name}/stat").read_text()
                parent = int(stat[stat.rfind(")") + 2 :].split()[1])
                children.setdefault(parent, []).append(int(name))
    return children


def _tree(root: int) -> set[int]:
    children, found, todo = _children(), set(), [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, ()):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
                alive.add(pid)
    return alive


@pytest.fixture
def server() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_kill_9_on_the_server_ends_every_worker_and_what_its_cells_started(server):
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "ready"
    workers = _tree(server.pid)
    # two workers, each `unshare` (or a supervisor) and what runs below it, cells' processes too
    assert len(workers) >= 6, workers
    server.send_signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(workers) == set()


def test_a_starting_server_kills_workers_whose_server_is_gone():
    dead_pid = max(_children()) + 100_000  # no such process
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    orphan = subprocess.Popen([*sleeper, f"kit-sandbox:{dead_pid}:1"])
    ours = subprocess.Popen([*sleeper, _live_marker()])
    try:
        for process in (orphan, ours):  # wait until both have exec'd (a loaded machine is slow)
            _wait_for_marker(process.pid)
        assert orphan.pid in reap_orphans()
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert ours.poll() is None  # a worker of a live server is left alone
    finally:
        for process in (orphan, ours):
            if process.poll() is None:
                process.kill()
            process.wait()


def _wait_for_marker(pid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if b"kit-sandbox:" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never showed its marker")


def _live_marker() -> str:
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    started = stat[stat.rfind(")") + 2 :].split()[19]
    return f"kit-sandbox:{os.getpid()}:{started}"
