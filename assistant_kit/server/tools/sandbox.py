"""Where the code interpreter's Python runs: the ``Executor`` interface and the local sandbox.

``LocalSandbox`` keeps one worker per session (a thread id) so variables survive between calls,
stops idle workers, caps how many live at once (``max_workers``: the least recently used idle one
is stopped; when all are busy a call waits up to ``timeout_s`` for room, then gets a clear error),
and contains what a cell does. A worker is a supervisor and the interpreter it watches (see
``sandbox_worker.py``): the server talks only to the supervisor, the cell never holds that channel.

* always: ``python -I`` with an almost empty environment (no API keys), a private working folder,
  ``setrlimit`` limits (address space, file size, core dumps, CPU seconds per cell as a soft limit
  under a fixed hard one), the cell's CPU time (all its processes) and wall clock measured by the
  supervisor, which kills and restarts the interpreter past them, an output cap,
  figures checked to be PNG, and workers that die with the server (parent-death signal; workers
  left by a server that died anyway are killed at start-up: ``reap_orphans()``);
* where the machine allows it (``unshare`` present, root or user namespaces; see
  ``probe_isolation()``): new network, pid, IPC, UTS and mount namespaces, with a root of its own:
  the host's system folders and the interpreter's folders read-only, nothing else of the host
  (no host ``/tmp``, ``/run``, ``/var``, ``/home``, ``/dev/shm``: no host sockets, no shared
  files), and one private ``tmpfs`` of ``disk_mb`` as ``/tmp``, ``/var/tmp``, ``/dev/shm`` and the
  working folder ``/mnt/data``: the only writable places. As root the code also runs under its own
  unprivileged uid, so that the limit on processes holds (a fork bomb stops at ``max_processes``).

This is process isolation, not a security boundary like a VM: for untrusted, multi-tenant use plug
in another ``Executor`` (a container or microVM service): ``CodeInterpreterTool(executor=...)``.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import ctypes
import functools
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

_WORKER_SOURCE = Path(__file__).with_name("sandbox_worker.py")
_READ_LIMIT = 64 * 1024 * 1024  # one reply line: logs plus base64 images
#: New network (only a downed loopback), pid, IPC, UTS and mount namespaces; the worker (init of
#: the pid namespace: every process in it dies with it) dies with `unshare`.
_UNSHARE_FLAGS = ("--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child")
#: The first argument of every worker process: ``kit-sandbox:<server pid>:<server start time>``,
#: so that a server starting up finds workers whose server is gone (``reap_orphans()``).
_MARKER = "kit-sandbox:"
_PR_SET_PDEATHSIG = 1
#: Seconds the server waits past ``timeout_s`` before it kills a worker that did not answer (the
#: worker's supervisor enforces ``timeout_s`` itself; this is for a supervisor that is stuck).
_BACKSTOP_S = 10.0
#: Host folders the sandbox sees, read-only (with the interpreter's own folders); nothing else.
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


@dataclass(frozen=True, slots=True)
class Execution:
    """What one cell produced."""

    logs: str
    error: str | None = None
    images: tuple[bytes, ...] = ()
    truncated: bool = False
    #: The worker was killed or died: the session's variables are gone.
    restarted: bool = False


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits on one worker and each of its cells; kit.yaml's ``server.tools.code_interpreter``."""

    timeout_s: float = 30.0  # wall clock per cell
    cpu_s: int = 30  # CPU seconds per cell
    memory_mb: int = 512  # address space of each process
    max_processes: int = 32  # processes and threads the code may run at once
    file_mb: int = 64  # largest file the code may write
    disk_mb: int = 256  # size of the private working folder (with namespaces)
    max_output_bytes: int = 64 * 1024  # logs returned per cell
    max_images: int = 8
    max_image_bytes: int = 4 * 1024 * 1024
    idle_timeout_s: float = 600.0  # a worker unused this long is stopped
    max_workers: int = 16  # live workers; the least recently used one goes first


class Executor(abc.ABC):
    """Runs Python for the code interpreter, with state kept per session.

    Replace ``LocalSandbox`` with an implementation that calls an external executor (a container
    pool, a remote Jupyter kernel gateway, a microVM service) for multi-tenant deployments.
    """

    #: A one-line description of the isolation this executor gives, for logs and docs.
    isolation: str = ""

    @abc.abstractmethod
    async def execute(self, session: str, code: str) -> Execution:
        """Run ``code`` in ``session``'s interpreter (started on first use); never raise for the
        code's own failures: they come back in ``Execution.error``."""

    @abc.abstractmethod
    async def reset(self, session: str) -> None:
        """Forget ``session``'s interpreter and its files."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Stop every worker."""


@dataclass(frozen=True, slots=True)
class Isolation:
    """What this machine lets the local sandbox do (see ``probe_isolation()``)."""

    namespaces: bool  # network + pid + IPC + mount namespaces and a private root through `unshare`
    separate_uid: bool  # the code runs under its own unprivileged uid
    unshare: str | None = None

    def describe(self) -> str:
        view = "no network, own pids and IPC, read-only system folders, private tmpfs"
        if self.namespaces and self.separate_uid:
            return f"namespaces ({view}) + separate uid + rlimits"
        if self.namespaces:
            return f"namespaces ({view}) + rlimits; same uid"
        return "rlimits only: NOT isolated from the network or the host's files"


def _kept_paths() -> list[str]:
    """The interpreter's folders the worker needs (base install, virtualenv, executable's
    folder), outermost only: each is bound read-only into the sandbox where it lives."""
    paths = sorted(
        {str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix, Path(sys.executable).parent)}
    )
    outermost: list[str] = []
    for path in paths:  # sorted, so a parent comes before what it holds
        if not any(path == kept or path.startswith(kept + "/") for kept in outermost):
            outermost.append(path)
    return outermost


# The launcher runs as root inside the new namespaces, builds the sandbox's whole view of the
# file system and execs the worker (which drops to its uid before running any cell). Arguments:
# $1 a staging folder, $2 disk quota in MB, $3 size of the tmpfs holding the captured output
# (apart, so that a full disk does not silence the cell), $4 the host folders to show read-only
# (newline separated), $5 the uid that owns /mnt/data (may be empty), then the worker's argv.
# The new root is a tmpfs, read-only once built, holding: the host folders (bound read-only),
# /proc of the new pid namespace, a few device nodes, and one writable tmpfs of $2 MB whose
# folders are /tmp, /var/tmp, /dev/shm and /mnt/data (the working folder); /run holds only the
# root-only capture folder. pivot_root then drops the host's tree from the namespace. Folders to
# show are bound last, so that an interpreter under /tmp (a virtualenv there) stays visible.
_LAUNCHER = r"""
set -e
stage="$1"; disk_mb="$2"; out_mb="$3"; show="$4"; owner="$5"
shift 5
cell_path="$PATH"
PATH="/usr/sbin:/sbin:/usr/bin:/bin"
IFS='
'
mount --make-rprivate /
root="$stage/root"
mkdir -p "$root" "$stage/disk"
mount -t tmpfs -o mode=755,size=1m kit-root "$root"
mkdir -p "$root/proc" "$root/dev/shm" "$root/tmp" "$root/var/tmp" "$root/mnt/data" \
  "$root/run/kit" "$root/.old"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
for d in null zero full random urandom; do
  touch "$root/dev/$d"
  mount --bind "/dev/$d" "$root/dev/$d"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o "mode=755,size=${disk_mb}m,nosuid,nodev" kit-disk "$stage/disk"
mkdir -m 1777 "$stage/disk/tmp" "$stage/disk/var-tmp" "$stage/disk/shm"
mkdir -m 700 "$stage/disk/data"
if [ -n "$owner" ]; then chown "$owner:$owner" "$stage/disk/data"; fi
mount --bind "$stage/disk/tmp" "$root/tmp"
mount --bind "$stage/disk/var-tmp" "$root/var/tmp"
mount --bind "$stage/disk/shm" "$root/dev/shm"
mount --bind "$stage/disk/data" "$root/mnt/data"
umount "$stage/disk"
for p in $show; do
  if [ -L "$p" ]; then
    mkdir -p "$root$(dirname "$p")"
    ln -s "$(readlink "$p")" "$root$p"
  elif [ -d "$p" ]; then
    mkdir -p "$root$p"
    mount --bind "$p" "$root$p"
    mount -o remount,bind,ro,nosuid,nodev "$root$p"
  fi
done
mount -t tmpfs -o "mode=700,size=${out_mb}m,nosuid,nodev,noexec" kit-output "$root/run/kit"
mount -o remount,bind,ro "$root"
cd "$root"
pivot_root . .old
umount -l /.old
cd /
unset IFS
PATH="$cell_path"
exec "$@"
"""


def _launcher_argv(
    unshare: str, stage: Path, limits: SandboxLimits, owner: int | None
) -> list[str]:
    flags = list(_UNSHARE_FLAGS)
    if os.geteuid() != 0:
        flags.insert(0, "--map-root-user")
    shown = "\n".join([*_SYSTEM_PATHS, *_kept_paths()])
    return [
        unshare,
        *flags,
        "--",
        "/bin/sh",
        "-c",
        _LAUNCHER,
        _server_marker(),
        str(stage),
        str(limits.disk_mb),
        str(limits.file_mb + 1),
        shown,
        "" if owner is None else str(owner),
    ]


@functools.lru_cache(maxsize=1)
def probe_isolation() -> Isolation:
    """Find out once whether ``unshare`` can build the sandbox's namespaces and view here."""
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        return Isolation(namespaces=False, separate_uid=False)
    with tempfile.TemporaryDirectory(prefix="kit-probe-") as folder:
        argv = _launcher_argv(unshare, Path(folder), SandboxLimits(), None)
        try:
            done = subprocess.run(
                [*argv, "/bin/true"],
                capture_output=True,
                timeout=10,
                check=False,
                cwd=folder,
                env={"PATH": "/usr/bin:/bin"},
            )
        except (OSError, subprocess.SubprocessError):
            return Isolation(namespaces=False, separate_uid=False)
    if done.returncode != 0:
        return Isolation(namespaces=False, separate_uid=False)
    return Isolation(namespaces=True, separate_uid=os.geteuid() == 0, unshare=unshare)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[19]


@functools.lru_cache(maxsize=1)
def _server_marker() -> str:
    return f"{_MARKER}{os.getpid()}:{_start_time(os.getpid())}"


def reap_orphans() -> list[int]:
    """Kill the sandbox workers whose server is gone (e.g. killed with ``kill -9`` by an older
    version, or before its workers' parent-death signal was set); returns their pids."""
    killed: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return killed
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            if not arg.startswith(_MARKER.encode()):
                continue
            server, _, started = arg[len(_MARKER) :].decode("ascii", "replace").partition(":")
            if not server.isdigit() or _start_time(int(server)) == started:
                break  # its server is alive
            with contextlib.suppress(OSError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            break
    return killed


@functools.lru_cache(maxsize=1)
def _reap_orphans_once() -> None:
    reap_orphans()


def _die_with_parent() -> None:  # pragma: no cover - runs between fork and exec
    """The worker's ``unshare`` (or, without namespaces, its supervisor) dies with the server:
    ``kill -9`` on the server ends every worker (``unshare --kill-child`` ends the rest)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def valid_png(data: bytes) -> bool:
    """Whether ``data`` is a PNG that Pillow reads back (never stored as one otherwise)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format != "PNG":
                    return False
                image.verify()
    except Exception:  # Pillow raises many kinds for broken files
        return False
    return True


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process, folder: Path) -> None:
        self.process = process
        self.folder = folder
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()

    def kill(self) -> None:
        """Kill the worker now (synchronous, so that it also happens when a call is cancelled)."""
        if self.process.returncode is None:
            # The group is ours while its leader lives (after that its id could be reused).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            # os.kill, not process.kill(): Popen.send_signal polls first and would reap the
            # leader the killpg just ended, leaving asyncio's child watcher an "unknown" pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        self.kill()
        await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class LocalSandbox(Executor):
    """Worker processes on this machine, one per session; see the module docstring."""

    def __init__(self, limits: SandboxLimits | None = None, *, isolate: bool = True) -> None:
        self.limits = limits or SandboxLimits()
        self._isolation = probe_isolation() if isolate else Isolation(False, False)
        self.isolation = self._isolation.describe()
        self._workers: dict[str, _Worker] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self._reserved = 0  # workers being started, counted against max_workers
        self._room: asyncio.Condition | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        _reap_orphans_once()

    async def execute(self, session: str, code: str) -> Execution:
        self._ensure_reaper()
        while True:
            try:
                worker, restarted = await self._worker(session)
            except _Full:
                return Execution(
                    logs="",
                    error=f"the code interpreter is busy: all {self.limits.max_workers} "
                    "interpreters are running code for other threads; try again shortly",
                )
            try:
                async with worker.lock:
                    if self._workers.get(session) is not worker:
                        continue  # stopped (timeout, idle, evicted) while this call waited
                    worker.last_used = time.monotonic()
                    try:
                        return await self._send(worker, code, restarted)
                    finally:
                        worker.last_used = time.monotonic()
            finally:
                await self._notify()  # a call waiting for room may stop this one now

    async def reset(self, session: str) -> None:
        worker = self._workers.pop(session, None)
        if worker is not None:
            await worker.stop()
            await self._notify()

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            await worker.stop()
        for task in list(self._stopping):
            with contextlib.suppress(Exception):
                await task

    async def _send(self, worker: _Worker, code: str, restarted: bool) -> Execution:
        process = worker.process
        assert process.stdin is not None and process.stdout is not None
        limits = self.limits
        request_id = secrets.token_hex(16)
        answer: object = None
        try:
            process.stdin.write(json.dumps({"id": request_id, "code": code}).encode() + b"\n")
            await process.stdin.drain()
            deadline = limits.timeout_s + _BACKSTOP_S
            line = await asyncio.wait_for(process.stdout.readline(), deadline)
            answer = json.loads(line) if line else None
        except asyncio.TimeoutError:
            await self._discard(worker)
            return Execution(
                logs="",
                error=f"TimeoutError: the code ran longer than {limits.timeout_s:g} s; "
                "the interpreter was restarted and its variables are lost",
                restarted=True,
            )
        except (OSError, ValueError):
            answer = None
        except BaseException:  # cancelled mid-cell: the worker's state is unknown, end it
            self._discard_soon(worker)
            raise
        if not isinstance(answer, dict) or answer.get("id") != request_id:
            await self._discard(worker)
            return Execution(
                logs="",
                error="the interpreter process died (out of memory or killed); "
                "it was restarted and its variables are lost",
                restarted=True,
            )
        # The supervisor read the logs; images come from the interpreter: check them again.
        images: list[bytes] = []
        dropped = int(answer.get("dropped_images") or 0)
        invalid = 0
        for item in answer.get("images") or ():
            try:
                data = base64.b64decode(str(item), validate=True)
            except ValueError:
                invalid += 1
                continue
            if not valid_png(data):
                invalid += 1
            elif len(images) < limits.max_images and len(data) <= limits.max_image_bytes:
                images.append(data)
            else:
                dropped += 1
        error = answer.get("error")
        error = str(error) if error is not None else None
        logs = str(answer.get("logs", ""))[: limits.max_output_bytes]
        for count, why in ((dropped, "too many or too large"), (invalid, "not a PNG image")):
            if count:
                separator = "\n" if logs and not logs.endswith("\n") else ""
                logs += f"{separator}[{count} figure(s) left out: {why}]\n"
        return Execution(
            logs=logs,
            error=error,
            images=tuple(images),
            truncated=bool(answer.get("truncated")),
            restarted=restarted or bool(answer.get("restarted")),
        )

    def _forget(self, worker: _Worker) -> None:
        for session, known in list(self._workers.items()):
            if known is worker:
                del self._workers[session]

    async def _discard(self, worker: _Worker) -> None:
        self._forget(worker)
        await worker.stop()
        await self._notify()

    def _discard_soon(self, worker: _Worker) -> None:
        self._forget(worker)
        worker.kill()
        task = asyncio.get_running_loop().create_task(worker.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _condition(self) -> asyncio.Condition:
        if self._room is None:
            self._room = asyncio.Condition()
        return self._room

    async def _notify(self) -> None:
        room = self._condition()
        async with room:
            room.notify_all()

    async def _worker(self, session: str) -> tuple[_Worker, bool]:
        worker = self._workers.get(session)
        if worker is not None and worker.process.returncode is None:
            return worker, False
        lock = self._starting.setdefault(session, asyncio.Lock())
        async with lock:
            worker = self._workers.get(session)
            if worker is not None and worker.process.returncode is None:
                return worker, False
            was_running = worker is not None
            if worker is not None:
                await self._discard(worker)
            try:
                await self._reserve()
                try:
                    worker = await self._spawn()
                finally:
                    self._reserved -= 1
            finally:
                self._starting.pop(session, None)
            self._workers[session] = worker
            return worker, was_running

    async def _reserve(self) -> None:
        """Make room for one more worker: stop the least recently used idle one when at
        ``max_workers``; when every worker is busy, wait (up to ``timeout_s``) for one to finish."""
        room = self._condition()
        deadline = time.monotonic() + self.limits.timeout_s
        async with room:
            while len(self._workers) + self._reserved >= self.limits.max_workers:
                idle = [w for w in self._workers.values() if not w.lock.locked()]
                if idle:
                    victim = min(idle, key=lambda w: w.last_used)
                    self._forget(victim)
                    victim.kill()
                    await victim.stop()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Full
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(room.wait(), left)
            self._reserved += 1

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())

    async def _reap_idle(self) -> None:
        idle = self.limits.idle_timeout_s
        while True:
            await asyncio.sleep(min(max(idle / 4, 0.05), 30.0))
            now = time.monotonic()
            for worker in list(self._workers.values()):
                if not worker.lock.locked() and now - worker.last_used > idle:
                    await self._discard(worker)

    async def _spawn(self) -> _Worker:
        limits = self.limits
        isolation = self._isolation
        folder = Path(tempfile.mkdtemp(prefix="kit-ci-"))
        uid = 2_000_000 + secrets.randbelow(1_000_000_000) if isolation.separate_uid else None
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        config: dict[str, object] = {
            "uid": uid,
            "max_processes": limits.max_processes,
            # Only where the count is ours alone: a uid of its own, or a user namespace.
            "limit_processes": isolation.namespaces,
            "memory_bytes": limits.memory_mb * 1024 * 1024,
            "file_bytes": limits.file_mb * 1024 * 1024,
            "cpu_s": limits.cpu_s,
            # the interpreter's lifetime hard limit (raising it per cell would need
            # CAP_SYS_RESOURCE); per cell, the supervisor counts and kills
            "cpu_s_total": max(limits.cpu_s * 1000, 3600),
            "timeout_s": limits.timeout_s,
            "max_output_bytes": limits.max_output_bytes,
            "max_images": limits.max_images,
            "max_image_bytes": limits.max_image_bytes,
        }
        python = [sys.executable, "-I", "-c", _WORKER_SOURCE.read_text(encoding="utf-8")]
        if isolation.namespaces and isolation.unshare is not None:
            home = "/tmp"
            config["cwd"] = "/mnt/data"
            config["capture"] = "/run/kit/output"
            (folder / "stage").mkdir()
            launcher = _launcher_argv(isolation.unshare, folder / "stage", limits, uid)
            argv = [*launcher, *python, json.dumps(config), _server_marker()]
        else:
            home = str(folder)
            config["cwd"] = home
            config["capture"] = str(folder / ".kit_output")
            config["uid"] = None
            argv = [*python, json.dumps(config), _server_marker()]
        env["HOME"] = home
        env["MPLCONFIGDIR"] = f"{home}/.matplotlib"
        errors = folder / "startup-errors.txt"  # what the launcher says before the worker runs
        with errors.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=folder,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                limit=_READ_LIMIT,
            )
        worker = _Worker(process, folder)
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), 30)
        except asyncio.TimeoutError:
            ready = b""
        except BaseException:
            worker.kill()
            raise
        if not ready.startswith(b'{"ready"'):
            said = errors.read_text(encoding="utf-8", errors="replace").strip()[-500:]
            await worker.stop()
            raise RuntimeError(f"the code interpreter's worker failed to start: {said or '?'}")
        return worker


class _Full(Exception):
    """Every worker slot is taken by a running cell."""
