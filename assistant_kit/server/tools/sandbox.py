"""Where the code interpreter's Python runs: the ``Executor`` interface and the local sandbox.

``LocalSandbox`` keeps one worker process per session (a thread id) so variables survive between
calls, stops idle workers, and contains what a cell does:

* always: ``python -I`` with an almost empty environment (no API keys), a private working folder,
  limits set with ``setrlimit`` (address space, CPU seconds per cell, file size, core dumps), a
  wall-clock timeout after which the whole process group is killed, and an output cap;
* where the machine allows it (root, ``unshare`` present; see ``probe_isolation()``): new network,
  pid and mount namespaces (no network interface but a downed loopback; every process the cell
  starts dies with the worker), a private ``tmpfs`` working folder whose size is the disk quota,
  unreadable parents of the Python installation (e.g. ``/root``) hidden behind an empty ``tmpfs``,
  and the code run under its own unprivileged uid, so that the limit on processes holds (a fork bomb
  stops at ``max_processes``) and other processes' environments cannot be read.

This is process isolation, not a security boundary like a VM: for untrusted, multi-tenant use plug
in another ``Executor`` (a container or microVM service): ``CodeInterpreterTool(executor=...)``.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_WORKER_SOURCE = Path(__file__).with_name("sandbox_worker.py")
_READ_LIMIT = 64 * 1024 * 1024  # one reply line: logs plus base64 images
#: New network (only a downed loopback), pid (with its own /proc) and mount namespaces; the worker
#: dies with `unshare`, and every process in the pid namespace dies with the worker.
_UNSHARE_FLAGS = ("--net", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child")


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

    namespaces: bool  # network + pid + mount namespaces through `unshare`
    separate_uid: bool  # the code runs under its own unprivileged uid
    unshare: str | None = None

    def describe(self) -> str:
        if self.namespaces and self.separate_uid:
            return "namespaces (no network, own pids, private tmpfs) + separate uid + rlimits"
        if self.namespaces:
            return "namespaces (no network, own pids, private tmpfs) + rlimits; same uid"
        return "rlimits only: NOT isolated from the network or the host's files"


@functools.lru_cache(maxsize=1)
def probe_isolation() -> Isolation:
    """Find out once whether ``unshare`` can give the worker new namespaces here."""
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        return Isolation(namespaces=False, separate_uid=False)
    root = os.geteuid() == 0
    flags = list(_UNSHARE_FLAGS)
    if not root:
        flags.insert(0, "--map-root-user")
    try:
        done = subprocess.run(
            [unshare, *flags, "--", "/bin/sh", "-c", "mount -t tmpfs tmpfs /tmp"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return Isolation(namespaces=False, separate_uid=False)
    if done.returncode != 0:
        return Isolation(namespaces=False, separate_uid=False)
    return Isolation(namespaces=True, separate_uid=root, unshare=unshare)


def _hidden_parent(path: Path) -> Path | None:
    """The topmost ancestor of ``path`` that other users may not enter (e.g. ``/root``)."""
    for parent in reversed(path.parents):
        if parent == Path("/"):
            continue
        try:
            mode = parent.stat().st_mode
        except OSError:
            return None
        if not mode & 0o001:
            return parent
    return None


def _kept_paths() -> list[str]:
    """The interpreter's folders the worker needs (base install, virtualenv, executable's
    folder), outermost only: each stays visible inside the sandbox wherever it lives."""
    paths = sorted(
        {str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix, Path(sys.executable).parent)}
    )
    outermost: list[str] = []
    for path in paths:  # sorted, so a parent comes before what it holds
        if not any(path == kept or path.startswith(kept + "/") for kept in outermost):
            outermost.append(path)
    return outermost


# The launcher runs as root inside the new namespaces, then execs the worker (which drops to its
# uid before running any cell). Arguments: $1 a staging folder, $2 the unreadable parents to
# cover (newline separated, may be empty), $3 tmpfs size for /tmp in MB, $4 size of the tmpfs
# holding the captured output (apart, so that a full disk does not silence the cell), $5 the
# interpreter's folders to keep visible (newline separated), then the worker's argv.
# A kept folder under a covered parent is bound aside, the parent covered, the folder moved back.
# The private /tmp is built aside (with the kept folders that live under /tmp, e.g. a virtualenv
# there, bound in read-only) and then moved over /tmp.
_LAUNCHER = r"""
set -e
stage="$1"; hidden="$2"; tmp_mb="$3"; out_mb="$4"; keep="$5"
shift 5
IFS='
'
for h in $hidden; do
  i=0
  for k in $keep; do
    case "$k/" in
      "$h"/*) i=$((i+1)); mkdir -p "$stage/keep$i"; mount --bind "$k" "$stage/keep$i";;
    esac
  done
  mount -t tmpfs -o mode=755,size=1m kit-hide "$h"
  i=0
  for k in $keep; do
    case "$k/" in "$h"/*) i=$((i+1)); mkdir -p "$k"; mount --move "$stage/keep$i" "$k";; esac
  done
done
mkdir -p "$stage/tmp"
mount -t tmpfs -o "mode=1777,size=${tmp_mb}m" kit-tmp "$stage/tmp"
mkdir -m 700 "$stage/tmp/work" "$stage/tmp/.output"
mount -t tmpfs -o "mode=700,size=${out_mb}m" kit-output "$stage/tmp/.output"
for k in $keep; do
  case "$k/" in
    /tmp/*)
      d="$stage/tmp/${k#/tmp/}"
      mkdir -p "$d"
      mount --bind "$k" "$d"
      mount -o remount,bind,ro "$d" 2>/dev/null || true
      ;;
  esac
done
if [ -n "$KIT_UID" ]; then chown "$KIT_UID:$KIT_UID" "$stage/tmp/work" "$stage/tmp/.output"; fi
mount --move "$stage/tmp" /tmp
unset IFS
exec "$@"
"""


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process, folder: Path) -> None:
        self.process = process
        self.folder = folder
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()

    async def stop(self) -> None:
        if self.process.returncode is None:
            # The group is ours while its leader lives (after that its id could be reused).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
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
        self._reaper: asyncio.Task[None] | None = None

    @property
    def network_isolated(self) -> bool:
        return self._isolation.namespaces

    async def execute(self, session: str, code: str) -> Execution:
        self._ensure_reaper()
        while True:
            worker, restarted = await self._worker(session)
            async with worker.lock:
                if self._workers.get(session) is not worker:
                    continue  # stopped (timeout, idle, evicted) while this call waited
                worker.last_used = time.monotonic()
                try:
                    return await self._send(worker, code, restarted)
                finally:
                    worker.last_used = time.monotonic()

    async def reset(self, session: str) -> None:
        worker = self._workers.pop(session, None)
        if worker is not None:
            await worker.stop()

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            await worker.stop()

    async def _send(self, worker: _Worker, code: str, restarted: bool) -> Execution:
        process = worker.process
        assert process.stdin is not None and process.stdout is not None
        limits = self.limits
        try:
            process.stdin.write(json.dumps({"code": code}).encode() + b"\n")
            await process.stdin.drain()
            line = await asyncio.wait_for(process.stdout.readline(), limits.timeout_s)
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
        if not isinstance(answer, dict) or "ok" not in answer:
            await self._discard(worker)
            return Execution(
                logs="",
                error="the interpreter process died (out of memory or killed); "
                "it was restarted and its variables are lost",
                restarted=True,
            )
        # The cell could have written this line itself: check what it claims against the limits.
        images: list[bytes] = []
        dropped = int(answer.get("dropped_images") or 0)
        for item in answer.get("images") or ():
            try:
                data = base64.b64decode(str(item), validate=True)
            except ValueError:
                dropped += 1
                continue
            if len(images) < limits.max_images and len(data) <= limits.max_image_bytes:
                images.append(data)
            else:
                dropped += 1
        error = answer.get("error")
        error = str(error) if error is not None else None
        logs = str(answer.get("logs", ""))[: limits.max_output_bytes]
        if dropped:
            separator = "\n" if logs and not logs.endswith("\n") else ""
            logs += f"{separator}[{dropped} figure(s) left out: too many or too large]\n"
        return Execution(
            logs=logs,
            error=error,
            images=tuple(images),
            truncated=bool(answer.get("truncated")),
            restarted=restarted,
        )

    async def _discard(self, worker: _Worker) -> None:
        for session, known in list(self._workers.items()):
            if known is worker:
                del self._workers[session]
        await worker.stop()

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
            await self._evict()
            try:
                worker = await self._spawn()
            finally:
                self._starting.pop(session, None)
            self._workers[session] = worker
            return worker, was_running

    async def _evict(self) -> None:
        """Make room for a worker: stop the least recently used idle ones (busy ones stay)."""
        while len(self._workers) >= self.limits.max_workers:
            idle = [w for w in self._workers.values() if not w.lock.locked()]
            if not idle:
                return
            await self._discard(min(idle, key=lambda w: w.last_used))

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
            "cpu_s_total": max(limits.cpu_s * 1000, 3600),
            "max_output_bytes": limits.max_output_bytes,
            "max_images": limits.max_images,
            "max_image_bytes": limits.max_image_bytes,
        }
        python = [sys.executable, "-I", "-c", _WORKER_SOURCE.read_text(encoding="utf-8")]
        if isolation.namespaces and isolation.unshare is not None:
            home = "/tmp/work"
            config["cwd"] = home
            config["capture"] = "/tmp/.output/output"
            kept = _kept_paths()
            # another uid runs the cells: cover what it may not enter, except what it needs
            hidden = (
                sorted({str(h) for k in kept if (h := _hidden_parent(Path(k))) is not None})
                if isolation.separate_uid
                else []
            )
            (folder / "stage").mkdir()
            flags = list(_UNSHARE_FLAGS)
            if not isolation.separate_uid:
                flags.insert(0, "--map-root-user")
            argv = [
                isolation.unshare,
                *flags,
                "--",
                "/bin/sh",
                "-c",
                _LAUNCHER,
                "kit-sandbox",
                str(folder / "stage"),
                "\n".join(hidden),
                str(limits.disk_mb),
                str(limits.file_mb + 1),
                "\n".join(kept),
                *python,
                json.dumps(config),
            ]
            if uid is not None:
                env["KIT_UID"] = str(uid)
        else:
            home = str(folder)
            config["cwd"] = home
            config["capture"] = f"{home}/.kit_output"
            config["uid"] = None
            argv = [*python, json.dumps(config)]
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
                limit=_READ_LIMIT,
            )
        worker = _Worker(process, folder)
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), 30)
        except asyncio.TimeoutError:
            ready = b""
        if not ready.startswith(b'{"ready"'):
            said = errors.read_text(encoding="utf-8", errors="replace").strip()[-500:]
            await worker.stop()
            raise RuntimeError(f"the code interpreter's worker failed to start: {said or '?'}")
        return worker
