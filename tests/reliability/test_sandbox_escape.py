"""Code a model runs through the code interpreter cannot reach what the server holds.

End to end: a scripted model turns the user's message into a ``code_interpreter`` call on a real
``kit serve`` whose keys are a sentinel secret. The code tries to read the server's environment
(its own and through ``/proc``), the server's SQLite store with a private conversation in it, to
connect to the server's port, to kill the server and to write into the project. The project lives
under ``/var/tmp`` in a world-readable folder, where a real project would sit (the sandbox hides
``/tmp`` behind its own tmpfs, so a store there would prove nothing).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kit_processes import KitServe
from kit_projects import texts, thread_messages, wait_runs

from assistant_kit.server.ids import new_id
from assistant_kit.server.store.records import AssistantRecord
from assistant_kit.server.store.sqlite import SqliteStore
from assistant_kit.server.tools.sandbox_launch import probe_isolation

SENTINEL = "kit-sentinel-" + uuid.uuid4().hex
MARKER = "private-conversation-" + uuid.uuid4().hex

SCRIPT = """\
rules:
  - user: "^probe:(?P<code>[A-Za-z0-9+/=]+)$"
    tool_calls:
      - name: code_interpreter
        arguments: {code: "import base64; exec(base64.b64decode('{code}'))"}
  - after_tool: code_interpreter
    reply: "{output}"
"""

KIT_YAML = """\
server:
  models:
    default: {backend: scripted, script: scripts/probe.yaml}
  tools:
    code_interpreter: {timeout_s: 30}
"""

PROBE = """
import os, socket, signal, glob
found = []
def look(label, data):
    text = data if isinstance(data, str) else data.decode("latin-1")
    for needle in ("SENTINEL", "MARKER"):
        if needle in text:
            found.append(label + " holds " + needle)
look("os.environ", repr(dict(os.environ)))
paths = ["DB", "DB-wal", "DB-shm", "/proc/PID/environ", "/proc/PID/cmdline"]
for path in paths + glob.glob("/proc/*/environ"):
    try:
        with open(path, "rb") as fh:
            look(path, fh.read())
        print("read", path)
    except OSError as exc:
        print("cannot read", path, type(exc).__name__)
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("127.0.0.1", PORT))
    found.append("connected to the server")
except OSError as exc:
    print("cannot connect", type(exc).__name__)
try:
    os.kill(PID, signal.SIGKILL)
    found.append("killed the server")
except OSError as exc:
    print("cannot kill", type(exc).__name__)
try:
    open("PROJECT/pwned", "w").write("x")
    found.append("wrote into the project")
except OSError as exc:
    print("cannot write", type(exc).__name__)
print("FOUND", found)
"""


@pytest.fixture
def project() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="kit-escape-", dir="/var/tmp"))
    try:
        folder.chmod(0o755)
        (folder / "scripts").mkdir(mode=0o755)
        (folder / "scripts" / "probe.yaml").write_text(SCRIPT, encoding="utf-8")
        (folder / "kit.yaml").write_text(KIT_YAML, encoding="utf-8")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_store_is_readable_by_its_owner_only(project: Path) -> None:
    store = SqliteStore(project / ".kit" / "server.db")
    store.open()
    try:
        asyncio.run(store.insert_assistant(AssistantRecord(id=new_id(), created_at=1, model="m")))
        made = sorted(p.name for p in (project / ".kit").iterdir())
        assert made == ["server.db", "server.db-shm", "server.db-wal"]
        for path in (project / ".kit").iterdir():
            assert path.stat().st_mode & 0o077 == 0, path
        assert (project / ".kit").stat().st_mode & 0o077 == 0
    finally:
        store.close()


@pytest.mark.slow
def test_code_from_the_model_cannot_reach_the_servers_secrets(project: Path) -> None:
    isolation = probe_isolation()
    if not isolation.separate_uid:
        pytest.skip("the sandbox runs code as the server's own user on this machine")
    env = {"KIT_SERVER_API_KEYS": SENTINEL, "SENTINEL_MODEL_KEY": SENTINEL}
    database = str(project / ".kit" / "server.db")
    with KitServe(project, key=SENTINEL, pass_key=False, env=env, database=database) as server:
        assert server.process is not None
        base = server.url("")
        with httpx.Client(headers=server.auth, timeout=60, trust_env=False) as http:
            private = http.post(f"{base}/v1/threads", json={"messages": [{"content": MARKER}]})
            assert private.status_code == 200
            assistant = http.post(
                f"{base}/v1/assistants",
                json={"model": "m", "tools": [{"type": "code_interpreter"}]},
            ).json()
            code = (
                PROBE.replace("SENTINEL", SENTINEL)
                .replace("MARKER", MARKER)
                .replace("DB", database)
                .replace("PID", str(server.process.pid))
                .replace("PORT", str(server.port))
                .replace("PROJECT", str(project))
            )
            message = "probe:" + base64.b64encode(code.encode()).decode()
            body = {"assistant_id": assistant["id"], "thread": {"messages": [{"content": message}]}}
            run = http.post(f"{base}/v1/threads/runs", json=body).json()
            final = wait_runs(http, base, {run["id"]: run["thread_id"]}, limit=90)
            assert final[run["id"]]["status"] == "completed", final
            reply = texts(thread_messages(http, base, run["thread_id"]))[-1][2]
            steps = http.get(f"{base}/v1/threads/{run['thread_id']}/runs/{run['id']}/steps")
            everything = reply + steps.text
        assert server.process.poll() is None, "the server died"
    assert "FOUND []" in reply, reply
    assert SENTINEL not in everything and MARKER not in everything
    assert "cannot read " + database in reply
    assert not (project / "pwned").exists()
    if isolation.namespaces:
        assert "cannot connect" in reply and "cannot kill" in reply


LINGER = """
import os, subprocess, time
subprocess.Popen(['sleep', '600'])
if os.fork() == 0:
    os.setsid()
    time.sleep(600)
time.sleep(600)
"""


def _below(root: int) -> set[int]:
    """Every live process under ``root`` (host view)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found.update(children)
        todo.extend(children)
    return found


@pytest.mark.slow
def test_kill_9_on_kit_serve_ends_the_code_a_run_is_running(project: Path) -> None:
    (project / "kit.yaml").write_text(
        KIT_YAML.replace("timeout_s: 30", "timeout_s: 900, cpu_s: 900"), encoding="utf-8"
    )
    with KitServe(project, key=SENTINEL) as server:
        assert server.process is not None
        base = server.url("")
        with httpx.Client(headers=server.auth, timeout=60, trust_env=False) as http:
            assistant = http.post(
                f"{base}/v1/assistants",
                json={"model": "m", "tools": [{"type": "code_interpreter"}]},
            ).json()
            message = "probe:" + base64.b64encode(LINGER.encode()).decode()
            body = {"assistant_id": assistant["id"], "thread": {"messages": [{"content": message}]}}
            assert http.post(f"{base}/v1/threads/runs", json=body).status_code == 200
            deadline = time.monotonic() + 60
            while len(workers := _below(server.process.pid)) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)  # unshare, supervisor, interpreter, sleep, the forked child
            assert len(workers) >= 5, workers
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
    deadline = time.monotonic() + 10
    while (left := {p for p in workers if Path(f"/proc/{p}").exists()}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not {p for p in left if "Z" not in Path(f"/proc/{p}/stat").read_text()}
