"""Real ``kit`` processes for the reliability suite: start, wait, stop, kill -9.

Every process runs ``[sys.executable, "-m", "assistant_kit", ...]`` with the test's environment
(so ``PYTHONPATH`` carries over) minus real keys and proxies, in a project folder of its own,
with its output captured to a log file there::

    with KitServe(tmp_path, key="k") as server:
        httpx.get(server.url("/v1/assistants"), headers=server.auth)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from kit_server import UNSAFE_ENV, free_port

__all__ = ["UNSAFE_ENV", "KitServe", "child_env", "free_port", "run_kit"]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without keys and proxies, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSAFE_ENV}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


def run_kit(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``kit ARGS`` to completion; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "assistant_kit", *args],
        cwd=cwd,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


class KitServe:
    """``kit serve`` on a free port, ready on entry, stopped (SIGTERM) on exit."""

    def __init__(
        self,
        folder: Path,
        *,
        key: str = "reliability-key",
        host: str = "127.0.0.1",
        database: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        pass_key: bool = True,
        ready_timeout: float = 60,
    ) -> None:
        self.folder = folder
        self.key = key
        self.host = host
        self.port = free_port("127.0.0.1")
        self.database = database or str(folder / "kit.db")
        self.log = folder / f"kit-serve-{self.port}.log"
        self.args = [
            sys.executable,
            "-m",
            "assistant_kit",
            "serve",
            "--host",
            host,
            "--port",
            str(self.port),
            "--db",
            self.database,
            *(["--api-key", key] if pass_key else []),
            *args,
        ]
        self.env = child_env(env)
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> KitServe:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.args, stdout=sink, stderr=subprocess.STDOUT, env=self.env, cwd=self.folder
            )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(trust_env=False, timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"kit serve exited with {self.process.returncode}:\n{self.output()}"
                    )
                try:
                    probe = http.get(self.url("/v1/assistants?limit=1"), headers=self.auth)
                    if probe.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"kit serve did not answer in {self.ready_timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the server and wait; SIGKILL if it hangs. Returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> KitServe:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.stop()
