"""The code interpreter's worker: a supervisor and the interpreter it watches, one pair per thread.

This file is not imported by the server. ``sandbox.py`` reads its source and runs it with
``python -I -c SOURCE CONFIG_JSON MARKER`` (inside the sandbox's namespaces, as their init, where
the machine allows), so it imports nothing from assistant_kit and only the standard library.

Two processes, so that the cell never holds the server's channel:

* the **supervisor** (this process; as root it keeps root, as init of the pid namespace) talks to
  the server: one JSON line per cell on stdin, ``{"id", "code"}``, one JSON line back on stdout,
  ``{"id", "ok", "logs", "error", "images", "dropped_images", "truncated", "restarted"}``. It is
  not dumpable, so a cell running under another uid cannot open its descriptors or trace it.
* the **interpreter** (a fork of it, under the sandbox's uid) runs the cells. It holds only
  /dev/null as stdin, the capture file as stdout and stderr, and two pipes to the supervisor.

Per cell the interpreter gives itself ``cpu_s`` more seconds of soft ``RLIMIT_CPU`` (SIGXCPU ends
the cell with ``CpuTimeExceeded``, variables kept). A cell can raise that soft limit or ignore the
signal, so the supervisor lets the interpreter run (``SIGCONT``), measures the CPU time of every
process of the sandbox and the wall clock, and kills and restarts the interpreter past ``cpu_s``
plus 1.5 s of grace or past ``timeout_s``. When the interpreter says the cell is done (a frame
carrying the cell's sequence number), the supervisor stops it (``SIGSTOP``: an idle interpreter
uses no CPU, and a cell that forged "done" stops there), kills every other process of the
sandbox, and answers the server with the logs it reads from the capture file itself. Whatever
the interpreter says is untrusted: the server checks it again (image bytes included). Bytes on
the interpreter's channel that are not a well-formed frame end the interpreter (restarted).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import ctypes
import fcntl
import io
import json
import math
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback
from typing import Any

_CELL = "<cell>"
_COMMAND_FD = 3  # interpreter: frames from the supervisor
_DONE_FD = 4  # interpreter: frames to the supervisor
_HEADER = struct.Struct(">I")
_CPU_GRACE_S = 1.5  # RLIMIT_CPU counts whole seconds: the soft limit fires within cpu_s + 1
_TICK_S = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


class CpuTimeExceeded(BaseException):
    """Raised in the cell when its CPU-seconds budget runs out (SIGXCPU)."""


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


# ---- framing between supervisor and interpreter ------------------------------------------------


def _write_frame(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


# ---- the interpreter (untrusted from the moment the first cell runs) ---------------------------


def _on_xcpu(signum: int, frame: Any) -> None:
    raise CpuTimeExceeded("CPU time limit exceeded")


def _figures(max_images: int, max_bytes: int) -> tuple[list[str], int]:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return [], 0
    images: list[str] = []
    dropped = 0
    for number in plt.get_fignums():
        figure = plt.figure(number)
        buffer = io.BytesIO()
        try:
            figure.savefig(buffer, format="png")
        except Exception:  # a broken figure must not break the cell's answer
            dropped += 1
            continue
        data = buffer.getvalue()
        if len(images) < max_images and len(data) <= max_bytes:
            images.append(base64.b64encode(data).decode("ascii"))
        else:
            dropped += 1
    plt.close("all")
    return images, dropped


def _format_error(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == _CELL]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _run_cell(code: str, namespace: dict[str, Any]) -> None:
    tree = ast.parse(code, _CELL, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body[-1].value)
        tree.body.pop()
    exec(compile(tree, _CELL, "exec"), namespace)
    if last is not None:
        value = eval(compile(last, _CELL, "eval"), namespace)
        if value is not None:
            print(repr(value))


def _set_cpu_budget(seconds: int) -> None:
    """Allow ``seconds`` more CPU seconds from now (the soft limit is cumulative per process; the
    hard one, fixed at start, cannot be raised again: the supervisor's count is the real limit)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + seconds
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _interpreter(config: dict[str, Any]) -> None:
    """Runs in the forked child: limits, uid drop, then one cell per frame until EOF."""
    if config.get("limit_processes"):
        # Counted per real uid (and per user namespace); root ignores it, hence the uid drop.
        resource.setrlimit(resource.RLIMIT_NPROC, (config["max_processes"],) * 2)
    uid = config.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - defensive
            raise SystemExit("sandbox worker: could not drop root")
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the uid change; the supervisor holds it
    for which, value in (
        (resource.RLIMIT_AS, config["memory_bytes"]),
        (resource.RLIMIT_FSIZE, config["file_bytes"]),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (config["cpu_s"], config["cpu_s_total"]))
    signal.signal(signal.SIGXCPU, _on_xcpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-large write fails with EFBIG instead
    os.chdir(config["cwd"])
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    me = os.getpid()
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    _write_frame(_DONE_FD, {"seq": 0})
    while True:
        header = _read_exact(_COMMAND_FD, _HEADER.size)
        body = _read_exact(_COMMAND_FD, _HEADER.unpack(header)[0]) if header else None
        if body is None:
            os._exit(0)
        request = json.loads(body)
        _reap_children()
        _set_cpu_budget(config["cpu_s"])
        error = None
        try:
            _run_cell(request["code"], namespace)
        except SystemExit as exc:
            if os.getpid() != me:
                os._exit(0)
            error = f"SystemExit: {exc.code}"
        except BaseException as exc:
            if os.getpid() != me:  # a forked child of the cell must never answer
                os._exit(1)
            error = _format_error(exc)
        if os.getpid() != me:
            os._exit(0)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        images, dropped = _figures(config["max_images"], config["max_image_bytes"])
        answer = {"seq": request["seq"], "error": error, "images": images, "dropped": dropped}
        _write_frame(_DONE_FD, answer)


# ---- the supervisor ----------------------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, state, CPU ticks of the process and its reaped children)."""
    table: dict[int, tuple[int, str, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        table[int(name)] = (int(fields[1]), fields[0], ticks)
    return table


def _descendants(table: dict[int, tuple[int, str, int]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _state, _ticks) in table.items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _read_capture(fd: int, cap: int) -> tuple[str, bool]:
    size = os.lseek(fd, 0, os.SEEK_END)
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, min(size, cap)) if size else b""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    return data.decode("utf-8", "replace"), size > cap


class _Supervisor:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.me = os.getpid()
        self.init = self.me == 1  # init of our own pid namespace: every process is ours
        self.capture = os.open(config["capture"], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.pid = 0
        self.to_child = self.from_child = -1
        self.seq = 0

    # -- the interpreter's life ------------------------------------------------------------------

    def start(self) -> None:
        command_r, command_w = os.pipe()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                null = os.open(os.devnull, os.O_RDONLY)
                # out of the way first: the pipes may sit on the numbers they are going to
                command = fcntl.fcntl(command_r, fcntl.F_DUPFD_CLOEXEC, 100)
                done = fcntl.fcntl(done_w, fcntl.F_DUPFD_CLOEXEC, 100)
                os.dup2(null, 0)
                os.dup2(self.capture, 1)
                os.dup2(self.capture, 2)
                os.dup2(command, _COMMAND_FD, inheritable=False)
                os.dup2(done, _DONE_FD, inheritable=False)
                os.closerange(_DONE_FD + 1, 65536)
                _interpreter(self.config)
            finally:
                os._exit(70)
        os.close(command_r)
        os.close(done_w)
        self.pid, self.to_child, self.from_child = pid, command_w, done_r
        ready = self._wait_done(0, deadline=time.monotonic() + 60, cpu_limit=None)
        if ready[0] != "done":
            raise SystemExit(f"sandbox worker: the interpreter did not start ({ready[0]})")
        self._pause()

    def _stop_interpreter(self) -> None:
        self._kill_strays(keep=None)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for fd in (self.to_child, self.from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pid = 0

    def _pause(self) -> None:
        """Stop the interpreter between cells and kill everything else the cell started."""
        self._kill_strays(keep=self.pid)

    def _kill_strays(self, keep: int | None) -> None:
        """Stop every process of the sandbox, then kill all but ``keep`` (which stays stopped)."""
        for _round in range(50):
            if self.init:
                with contextlib.suppress(OSError):
                    os.kill(-1, signal.SIGSTOP)  # in our pid namespace: all but ourselves
            table = _process_table()
            targets = [p for p in _descendants(table, self.me) if table[p][1] not in "ZX"]
            if not self.init:
                for pid in targets:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGSTOP)
            victims = [p for p in targets if p != keep]
            for pid in victims:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self._reap()
            if not victims:
                return
            time.sleep(0.01)

    def _reap(self) -> bool:
        """Reap what has ended; True when the interpreter was among it."""
        gone = False
        with contextlib.suppress(ChildProcessError):
            while pid := os.waitpid(-1, os.WNOHANG)[0]:
                gone = gone or pid == self.pid
        return gone

    def _cpu_ticks(self) -> int:
        """CPU time of every process of the sandbox (the supervisor's own excluded)."""
        table = _process_table()
        total = sum(table[p][2] for p in _descendants(table, self.me))
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # what was reaped here
        return total + round((usage.ru_utime + usage.ru_stime) * _CLOCK_TICKS)

    def _wait_done(self, seq: int, deadline: float, cpu_limit: int | None) -> tuple[str, Any]:
        """Wait for the interpreter's frame ``seq``: ("done", frame) or why it did not come."""
        start_ticks = self._cpu_ticks() if cpu_limit is not None else 0
        limit = (self.config["max_images"] + 1) * self.config["max_image_bytes"] * 2 + (1 << 20)
        buffer = b""
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "timeout", None
            ready, _, _ = select.select([self.from_child], [], [], min(_TICK_S, deadline - now))
            if ready:
                chunk = os.read(self.from_child, 1 << 20)
                if not chunk:  # the interpreter is gone, or the cell closed the channel
                    with contextlib.suppress(OSError):
                        os.kill(self.pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(self.pid, 0)
                    return self._gone(start_ticks, cpu_limit), None
                buffer += chunk
                while len(buffer) >= _HEADER.size:
                    size = _HEADER.unpack(buffer[: _HEADER.size])[0]
                    if size > limit:
                        return "garbled", None
                    if len(buffer) < _HEADER.size + size:
                        break
                    body, buffer = (
                        buffer[_HEADER.size : _HEADER.size + size],
                        buffer[_HEADER.size + size :],
                    )
                    try:
                        frame = json.loads(body)
                    except ValueError:
                        return "garbled", None
                    if not isinstance(frame, dict):
                        return "garbled", None
                    if frame.get("seq") == seq:
                        return "done", frame
                    # an older cell's frame (one that had forged "done"): not this cell's answer
            if self._reap():
                return self._gone(start_ticks, cpu_limit), None
            if cpu_limit is not None and self._cpu_ticks() - start_ticks > cpu_limit:
                return "cpu", None

    def _gone(self, start_ticks: int, cpu_limit: int | None) -> str:
        """Why the interpreter ended: its hard RLIMIT_CPU ("cpu"), or anything else ("died")."""
        spent = self._cpu_ticks() - start_ticks
        if cpu_limit is not None and spent >= int(self.config["cpu_s"]) * _CLOCK_TICKS:
            return "cpu"
        return "died"

    # -- one cell --------------------------------------------------------------------------------

    def run(self, code: str) -> dict[str, Any]:
        config = self.config
        self.seq += 1
        if not self.pid:
            self.start()
        with contextlib.suppress(OSError):  # the interpreter is gone: the wait below says so
            _write_frame(self.to_child, {"seq": self.seq, "code": code})
        with contextlib.suppress(ProcessLookupError):  # gone while paused: the wait says so
            os.kill(self.pid, signal.SIGCONT)
        cpu_limit = round((config["cpu_s"] + _CPU_GRACE_S) * _CLOCK_TICKS)
        deadline = time.monotonic() + config["timeout_s"]
        outcome, frame = self._wait_done(self.seq, deadline, cpu_limit)
        if outcome == "done":
            self._pause()
        else:
            self._stop_interpreter()
        logs, truncated = _read_capture(self.capture, config["max_output_bytes"])
        answer: dict[str, Any] = {
            "logs": logs,
            "truncated": truncated,
            "error": None,
            "images": [],
            "dropped_images": 0,
            "restarted": outcome != "done",
        }
        if outcome == "done":
            error = frame.get("error")
            answer["error"] = str(error) if error is not None else None
            images = frame.get("images")
            answer["images"] = [str(i) for i in images] if isinstance(images, list) else []
            dropped = frame.get("dropped")
            answer["dropped_images"] = dropped if isinstance(dropped, int) else 0
            return answer
        lost = "the interpreter was restarted and its variables are lost"
        answer["error"] = {
            "timeout": f"TimeoutError: the code ran longer than {config['timeout_s']:g} s; {lost}",
            "cpu": f"CpuTimeExceeded: the code used more than {config['cpu_s']} CPU seconds "
            f"(counting every process it started); {lost}",
            "died": f"the interpreter process died (out of memory or killed); {lost}",
            "garbled": f"the code wrote into the interpreter's own channel; {lost}",
        }[outcome]
        return answer


def main() -> None:
    config = json.loads(sys.argv[1])
    _prctl(_PR_SET_DUMPABLE, 0)  # no /proc/<pid>/fd, mem or ptrace for the cell's uid
    if os.getpid() != 1:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # orphans of the cell stay ours to find and kill
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    supervisor = _Supervisor(config)
    supervisor.start()
    replies.write(b'{"ready": true}\n')
    for line in requests:
        try:
            request = json.loads(line)
            answer = supervisor.run(str(request["code"]))
            answer["id"] = request.get("id")
        except (ValueError, KeyError, TypeError):
            answer = {"id": None, "error": "bad request"}
        replies.write(json.dumps(answer).encode() + b"\n")
    if supervisor.pid:
        supervisor._stop_interpreter()


if __name__ == "__main__":
    main()
