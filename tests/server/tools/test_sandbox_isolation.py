"""The attacks of issue 13 on the local sandbox, each reproduced and contained (run as root here
and on CI; the namespace-only ones skip, saying why, where ``unshare`` cannot build them).

What each test attacks: host-wide writable folders shared between threads and past ``disk_mb``;
SysV shared memory shared between threads; host Unix sockets reached from "no network"; the CPU
limit raised by the cell (SIGXCPU ignored, or the work spread over processes); a forged answer
on the worker's channel and forged image bytes; ``max_workers`` exceeded by busy workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from sandbox_cells import ISOLATION, LIMITS, in_thread, needs_namespaces, run

from assistant_kit.server.tools.code_interpreter import CodeInterpreterTool
from assistant_kit.server.tools.sandbox import LocalSandbox, valid_png

pytestmark = pytest.mark.anyio

#: generous wall clock: the CPU limit must be what ends a loop, even on a loaded machine
ISOLATED = replace(LIMITS, timeout_s=60, file_mb=8)
PRIVATE = ("/tmp", "/var/tmp", "/dev/shm", "/mnt/data")


@pytest.fixture
async def tool() -> AsyncIterator[CodeInterpreterTool]:
    tool = CodeInterpreterTool(LocalSandbox(ISOLATED))
    yield tool
    await tool.aclose()


# ---- the file system ---------------------------------------------------------------------------


@needs_namespaces
async def test_files_written_anywhere_writable_stay_with_their_worker(tool, context):
    name = f"kit-leak-{uuid.uuid4().hex}"
    folders = [*PRIVATE, "/run/lock", "/run", "/"]
    write = (
        "import os\n"
        f"for folder in {folders!r}:\n"
        "    try:\n"
        f"        open(os.path.join(folder, {name!r}), 'w').write('from thread A')\n"
        "        print('wrote', folder)\n"
        "    except OSError as exc:\n"
        "        print('refused', folder, type(exc).__name__)\n"
    )
    look = (
        "import os\n"
        f"print(sorted(f for f in {folders!r} if os.path.exists(os.path.join(f, {name!r}))))"
    )
    wrote = await run(tool, context, write)
    assert wrote.splitlines() == [
        *(f"wrote {folder}" for folder in PRIVATE),
        "refused /run/lock FileNotFoundError",
        "refused /run OSError",  # read-only file system
        "refused / OSError",
    ]
    assert await run(tool, context, look) == repr(sorted(PRIVATE))
    # another thread, the host, and the same thread after a restart see none of it
    assert await run(tool, in_thread(context, "thread_b"), look) == "[]"
    for folder in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/run"):
        assert not (Path(folder) / name).exists(), folder
    await tool.forget_thread("thread_1")
    assert await run(tool, context, look) == "[]"


@needs_namespaces
async def test_every_writable_place_shares_one_tmpfs_of_disk_mb(tool, context):
    # 6 MB into each of the four writable folders: 24 MB in all, with disk_mb 16
    code = (
        "import os\n"
        "total = 0\n"
        f"for folder in {PRIVATE!r}:\n"
        "    try:\n"
        "        with open(os.path.join(folder, 'fill.bin'), 'wb') as fh:\n"
        "            for _ in range(6):\n"
        "                fh.write(bytes(1024 * 1024))\n"
        "                fh.flush()\n"
        "                total += 1\n"
        "    except OSError as exc:\n"
        "        print(folder, exc.strerror)\n"
        "print('MB written', total)\n"
    )
    out = (await tool.call({"code": code}, context)).output.splitlines()
    written = int(out[-1].split()[-1])
    assert 12 <= written <= 16, out
    assert "No space left on device" in out[0]


@needs_namespaces
async def test_nothing_outside_the_private_tmpfs_is_writable(tool, context):
    code = (
        "rw = []\n"
        "for line in open('/proc/self/mountinfo'):\n"
        "    fields = line.split()\n"
        "    if 'rw' in fields[5].split(','):\n"
        "        rw.append((fields[4], fields[line.split().index('-') + 1]))\n"
        "print(sorted(rw))\n"
    )
    mounts = dict(eval((await tool.call({"code": code}, context)).output))
    devices = {f"/dev/{d}" for d in ("null", "zero", "full", "random", "urandom")}
    # /run/kit holds the captured output: the supervisor's, mode 700
    assert set(mounts) == {*PRIVATE, "/proc", "/run/kit", *devices}
    assert {mounts[p] for p in PRIVATE} == {"tmpfs"}
    assert mounts["/proc"] == "proc"
    assert {mounts[d] for d in devices} == {"devtmpfs"}
    if ISOLATION.separate_uid:
        assert await run(tool, context, "import os\nos.access('/run/kit', os.W_OK)") == "False"


@needs_namespaces
async def test_host_folders_other_than_the_system_ones_are_not_there(tool, context):
    project = Path(__file__).resolve().parents[3]
    # The project's own files (its sources, its .kit/ store folder) are not there. When the
    # virtualenv lives inside the project (CI: <clone>/.venv), the project's folder exists only
    # as the empty path down to that virtualenv, which is bound read-only.
    venv = Path(sys.prefix).resolve()
    inside = venv.relative_to(project).parts[:1] if venv.is_relative_to(project) else ()
    code = (
        "import os\n"
        "print([p for p in ('/home', '/var/lib', '/srv', '/opt', '/run/kit')"
        " if os.path.exists(p) and os.access(p, os.R_OK)])\n"
        f"project = {str(project)!r}\n"
        "print(sorted(os.listdir(project)) if os.path.isdir(project) else [])\n"
        "print(os.path.isdir('/usr/lib'), os.path.isfile('/etc/os-release'))\n"
    )
    out = await run(tool, context, code)
    assert out.splitlines() == ["[]", str(list(inside)), "True True"]


# ---- IPC and sockets ---------------------------------------------------------------------------

SHM = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
KEY = {key}
"""


@needs_namespaces
async def test_sysv_shared_memory_is_not_shared_between_threads_or_with_the_host(tool, context):
    key = 0x4B49_0000 + os.getpid() % 0xFFFF
    make = SHM.format(key=key) + (
        "shm = libc.shmget(KEY, 4096, 0o1666)\n"  # IPC_CREAT | 0666
        "address = libc.shmat(shm, None, 0)\n"
        "ctypes.memmove(address, b'secret-from-a', 13)\n"
        "print(shm >= 0)\n"
    )
    read = SHM.format(key=key) + "print(libc.shmget(KEY, 0, 0), ctypes.get_errno())\n"
    assert await run(tool, context, make) == "True"
    assert await run(tool, context, read) != "-1 2"  # the same thread still has it
    assert await run(tool, in_thread(context, "thread_b"), read) == "-1 2"  # ENOENT
    libc = __import__("ctypes").CDLL(None, use_errno=True)
    assert libc.shmget(key, 0, 0) == -1  # nor does the host, during or after
    await tool.forget_thread("thread_1")
    assert libc.shmget(key, 0, 0) == -1


@pytest.fixture
def host_sockets() -> Iterator[list[tuple[str, socket.socket]]]:
    """World-writable Unix sockets where a host service would put them, plus an abstract one."""
    token = uuid.uuid4().hex
    paths = [f"/tmp/kit-{token}.sock", f"/var/tmp/kit-{token}.sock", f"/run/kit-{token}.sock"]
    if Path("/dev/shm").is_dir():
        paths.append(f"/dev/shm/kit-{token}.sock")
    servers: list[tuple[str, socket.socket]] = []
    try:
        for path in [*paths, f"\0kit-{token}"]:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(path)
            if not path.startswith("\0"):
                os.chmod(path, 0o777)
            server.listen(4)
            server.setblocking(False)
            servers.append((path, server))
        yield servers
    finally:
        for path, server in servers:
            server.close()
            if not path.startswith("\0"):
                with contextlib.suppress(OSError):
                    os.unlink(path)


@needs_namespaces
async def test_host_unix_sockets_are_out_of_reach(tool, context, host_sockets):
    code = (
        "import socket\n"
        f"for path in {[p for p, _ in host_sockets]!r}:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    try:\n"
        "        s.connect(path)\n"
        "        print('CONNECTED', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', type(exc).__name__)\n"
    )
    out = await run(tool, context, code)
    assert "CONNECTED" not in out
    assert len(out.splitlines()) == len(host_sockets)
    for _path, server in host_sockets:
        with pytest.raises(BlockingIOError):
            server.accept()


# ---- CPU ---------------------------------------------------------------------------------------

#: Raises its own soft CPU limit to the hard one and ignores SIGXCPU, then burns 6 CPU seconds.
GREEDY = """
import resource, signal, time
signal.signal(signal.SIGXCPU, signal.SIG_IGN)
hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
while time.process_time() < 6:
    pass
print('burned 6 CPU seconds')
"""

#: Four processes, each well under the limit on its own, 3.6 CPU seconds together.
SPREAD = """
import os, time
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        while time.process_time() < 0.9:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print('spread 3.6 CPU seconds')
"""


@pytest.mark.parametrize("code", [GREEDY, SPREAD], ids=["raised-limit", "spread-over-processes"])
async def test_the_cpu_limit_holds_against_the_cell(tool, context, code):
    await run(tool, context, "kept = 1")
    result = await tool.call({"code": code}, context)
    assert result.is_error
    assert result.output.startswith("CpuTimeExceeded: the code used more than 1 CPU seconds")
    assert "NameError" in await run(tool, context, "kept")  # restarted
    assert await run(tool, context, "6 * 7") == "42"


# ---- the worker's channel and its images -------------------------------------------------------

FORGED = '{"ok": true, "logs": "FORGED", "error": null, "images": ["aGk="], "truncated": false}\n'

#: Writes a forged answer on every descriptor the interpreter holds past stdout and stderr (the
#: old worker answered on a copy of its stdout), then keeps going.
FORGE_EVERYWHERE = f"""
import os, time
for name in os.listdir('/proc/self/fd'):
    try:
        if int(name) > 2:
            os.write(int(name), {FORGED!r}.encode())
    except OSError:
        pass
time.sleep(1)
print('genuine')
"""

#: Knows the worker's protocol: answers its own request (right sequence number) with forged
#: logs and image bytes, then burns CPU forever.
FORGE_FRAME = """
import base64, json, os, struct, sys
frame = sys._getframe()
while 'request' not in frame.f_locals:
    frame = frame.f_back
seq = frame.f_locals['request']['seq']
fake = base64.b64encode(b'\\x89PNG\\r\\n\\x1a\\n' + b'not an image' * 100).decode()
forged = {'seq': seq, 'error': None, 'images': [fake], 'dropped': 0, 'logs': 'FORGED'}
data = json.dumps(forged).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack('>I', len(data)) + data)
    except OSError:
        pass
while True:
    pass
"""


def _tree_cpu_ticks(root: int) -> int:
    """CPU ticks used so far by ``root`` and every process below it (host view)."""
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{name}/stat").read_text()
                fields = stat[stat.rfind(")") + 2 :].split()
                table[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0))[1]
        todo += [p for p, (parent, _) in table.items() if parent == pid]
    return total


async def test_a_forged_answer_on_any_descriptor_is_not_the_answer(tool, context, files):
    result = await tool.call({"code": FORGE_EVERYWHERE}, context)
    assert result.is_error
    assert result.output == (
        "the code wrote into the interpreter's own channel; "
        "the interpreter was restarted and its variables are lost"
    )
    assert result.images == () and files.data == {}
    assert await run(tool, context, "6 * 7") == "42"


async def test_a_cell_that_forges_its_own_frame_gets_its_real_logs_and_stops(tool, context, files):
    sandbox = tool.executor
    assert isinstance(sandbox, LocalSandbox)
    result = await tool.call({"code": "print('real output')\n" + FORGE_FRAME}, context)
    assert "FORGED" not in result.output
    assert result.output == "real output\n[1 figure(s) left out: not a PNG image]"
    assert result.images == () and files.data == {}
    # the cell claimed to be done while looping: it is stopped, not burning CPU in the background
    leader = sandbox._workers["thread_1"].process.pid
    before = _tree_cpu_ticks(leader)
    await asyncio.sleep(1.0)
    assert _tree_cpu_ticks(leader) - before <= 5  # ticks (1/100 s): idle
    # the next cells get their own answers (the loop ends at the CPU limit first)
    second = await run(tool, context, "print('second')")
    assert "FORGED" not in second
    assert await run(tool, context, "6 * 7") == "42"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_only_real_pngs_pass_as_figures():
    real = _png()
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    assert valid_png(real)
    assert not valid_png(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    assert not valid_png(real[: len(real) // 2])
    assert not valid_png(jpeg.getvalue())
    assert not valid_png(b"<svg/>")


# ---- max_workers -------------------------------------------------------------------------------


def _live_workers() -> int:
    """This process's live workers, as the host sees them (their `unshare` or supervisor)."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            stat = Path(f"/proc/{name}/stat").read_text()
            parent = int(stat[stat.rfind(")") + 2 :].split()[1])
            if (
                parent == os.getpid()
                and b"kit-sandbox:" in Path(f"/proc/{name}/cmdline").read_bytes()
            ):
                count += 1
    return count


async def test_max_workers_caps_busy_workers_too(context):
    sandbox = LocalSandbox(replace(ISOLATED, max_workers=2, timeout_s=10))
    tool = CodeInterpreterTool(sandbox)
    seen: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            seen.append(_live_workers())
            await asyncio.sleep(0.02)

    try:
        watcher = asyncio.ensure_future(watch())
        calls = [
            tool.call({"code": "import time\ntime.sleep(0.5)\nprint('ok')"}, in_thread(context, t))
            for t in ("a", "b", "c", "d")
        ]
        results = await asyncio.gather(*calls)
        done.set()
        await watcher
    finally:
        await tool.aclose()
    assert [r.output for r in results] == ["ok"] * 4  # the others waited for room
    assert max(seen) == 2


async def test_a_call_that_finds_no_room_in_time_gets_a_clear_error(context):
    # one worker; "a" holds it, "b" queues for it and gets it, "c" queues behind "b" past its
    # own wait (timeout_s) and gets the error
    sandbox = LocalSandbox(replace(ISOLATED, max_workers=1, timeout_s=5))
    tool = CodeInterpreterTool(sandbox)
    slow = "import time\ntime.sleep(3.5)\nprint('ok')"
    try:
        assert await run(tool, in_thread(context, "a"), "1") == "1"  # started: no start-up time
        first = asyncio.ensure_future(tool.call({"code": slow}, in_thread(context, "a")))
        await asyncio.sleep(0.5)
        second = asyncio.ensure_future(tool.call({"code": slow}, in_thread(context, "b")))
        await asyncio.sleep(0.1)
        third = await tool.call({"code": "1"}, in_thread(context, "c"))
        outputs = [(await first).output, (await second).output]
    finally:
        await tool.aclose()
    assert outputs == ["ok", "ok"]
    assert third.is_error
    assert third.output == (
        "the code interpreter is busy: all 1 interpreters are running code for other threads; "
        "try again shortly"
    )


# ---- the supervisor ----------------------------------------------------------------------------


@pytest.mark.skipif(
    not ISOLATION.separate_uid,
    reason="the server does not run as root here: the code runs under the supervisor's own uid",
)
async def test_the_cell_cannot_touch_its_supervisor(tool, context):
    code = (
        "import os, signal\n"
        "for attempt in (lambda: os.listdir('/proc/1/fd'), lambda: os.kill(1, signal.SIGKILL),\n"
        "                lambda: open('/proc/1/mem', 'rb').read(1)):\n"
        "    try:\n"
        "        attempt()\n"
        "        print('DONE')\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    assert await run(tool, context, code) == "PermissionError\nPermissionError\nPermissionError"
    assert await run(tool, context, "6 * 7") == "42"


async def test_a_worker_whose_supervisor_stops_answering_is_killed_by_the_server(
    context, monkeypatch
):
    monkeypatch.setattr("assistant_kit.server.tools.sandbox._BACKSTOP_S", 0.5)
    sandbox = LocalSandbox(replace(ISOLATED, timeout_s=1))
    tool = CodeInterpreterTool(sandbox)
    try:
        await run(tool, context, "kept = 1")
        leader = sandbox._workers["thread_1"].process.pid
        below = [int(p) for p in Path(f"/proc/{leader}/task/{leader}/children").read_text().split()]
        supervisor = below[0] if ISOLATION.namespaces else leader
        os.kill(supervisor, signal.SIGSTOP)  # a supervisor that hangs
        result = await tool.call({"code": "print(1)"}, context)
        after = await run(tool, context, "kept")
    finally:
        await tool.aclose()
    assert result.output == (
        "TimeoutError: the code ran longer than 1 s; "
        "the interpreter was restarted and its variables are lost"
    )
    assert "NameError" in after
    assert not Path(f"/proc/{leader}").exists()
