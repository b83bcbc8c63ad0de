"""The code interpreter's worker: one long-lived Python process per thread.

This file is not imported by the server. ``sandbox.py`` reads its source and runs it with
``python -I -c SOURCE CONFIG_JSON`` inside the sandbox, so it imports nothing from assistant_kit and
only the standard library before the limits are in place.

Protocol: the parent writes one JSON line per cell to stdin, ``{"code": "..."}``; the worker answers
one JSON line on the pipe that was its stdout when it started, ``{"ok", "logs", "error",
"images", "truncated"}``. Everything the cell (or a process it starts) writes to fd 1 and fd 2 goes
to a capture file, read back and capped after the cell.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import json
import math
import os
import resource
import signal
import sys
import traceback
from typing import Any

_CELL = "<cell>"


class CpuTimeExceeded(BaseException):
    """Raised in the cell when its CPU-seconds budget runs out (SIGXCPU)."""


def _limit(which: int, value: int) -> None:
    if value > 0:
        resource.setrlimit(which, (value, value))


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - defensive
        raise SystemExit("sandbox worker: could not drop root")


def _on_xcpu(signum: int, frame: Any) -> None:
    raise CpuTimeExceeded("CPU time limit exceeded")


def _set_cpu_budget(seconds: int) -> None:
    """Allow ``seconds`` more CPU seconds from now (the soft limit is cumulative per process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _reap_strays() -> None:
    """Kill every process the cell left behind (only safe as the init of our own pid namespace)."""
    if os.getpid() != 1:
        return
    with contextlib.suppress(OSError):
        os.kill(-1, signal.SIGKILL)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            # Children that are not dead yet: SIGKILL is on its way, wait for them.
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


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


def _read_capture(fd: int, cap: int) -> tuple[str, bool]:
    size = os.lseek(fd, 0, os.SEEK_END)
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, min(size, cap)) if size else b""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    return data.decode("utf-8", "replace"), size > cap


def main() -> None:
    config = json.loads(sys.argv[1])
    reply_fd = os.dup(1)
    os.set_inheritable(reply_fd, False)
    stdin = os.fdopen(os.dup(0), "rb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.chdir(config["cwd"])
    capture = os.open(config["capture"], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(capture, 1)
    os.dup2(capture, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)

    if config.get("limit_processes"):
        # Counted per real uid (and per user namespace); root ignores it, hence the uid drop.
        _limit(resource.RLIMIT_NPROC, config["max_processes"])
    if config.get("uid") is not None:
        _drop_privileges(config["uid"])
    _limit(resource.RLIMIT_AS, config["memory_bytes"])
    _limit(resource.RLIMIT_FSIZE, config["file_bytes"])
    _limit(resource.RLIMIT_CORE, 0)
    resource.setrlimit(resource.RLIMIT_CPU, (config["cpu_s"], config["cpu_s_total"]))
    signal.signal(signal.SIGXCPU, _on_xcpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-large write fails with EFBIG instead

    me = os.getpid()
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    reply = os.fdopen(reply_fd, "wb", buffering=0)
    reply.write(b'{"ready": true}\n')
    for line in stdin:
        request = json.loads(line)
        error = None
        _set_cpu_budget(config["cpu_s"])
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
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        images, dropped = _figures(config["max_images"], config["max_image_bytes"])
        _reap_strays()
        logs, truncated = _read_capture(capture, config["max_output_bytes"])
        answer = {
            "ok": error is None,
            "logs": logs,
            "error": error,
            "images": images,
            "dropped_images": dropped,
            "truncated": truncated,
        }
        reply.write(json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    main()
