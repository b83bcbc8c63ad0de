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
  left by a server that died anyway are killed at start-up: ``sandbox_launch.reap_orphans()``);
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
import io
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from assistant_kit.server.tools.sandbox_launch import (
    Isolation,
    die_with_parent,
    launcher_argv,
    probe_isolation,
    reap_orphans_once,
    server_marker,
)

_WORKER_SOURCE = Path(__file__).with_name("sandbox_worker.py")
_READ_LIMIT = 64 * 1024 * 1024  # one reply line: logs plus base64 images
#: Seconds the server waits past ``timeout_s`` before it kills a worker that did not answer (the
#: worker's supervisor enforces ``timeout_s`` itself; this is for a supervisor that is stuck).
_BACKSTOP_S = 10.0


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
        reap_orphans_once()

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
            launcher = launcher_argv(
                isolation.unshare, folder / "stage", limits.disk_mb, limits.file_mb + 1, uid
            )
            argv = [*launcher, *python, json.dumps(config), server_marker()]
        else:
            home = str(folder)
            config["cwd"] = home
            config["capture"] = str(folder / ".kit_output")
            config["uid"] = None
            argv = [*python, json.dumps(config), server_marker()]
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
                preexec_fn=die_with_parent,
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
