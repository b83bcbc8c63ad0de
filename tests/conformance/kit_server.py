"""Start ``kit serve`` as a real subprocess on a free loopback port, for tests and benches.

``running_kit_server()`` is a context manager; the ``kit_server`` fixture in this folder's
conftest wraps it for a whole session. Run tests (runs, streams) reuse both::

    with running_kit_server(extra_args=["--log-level", "info"]) as server:
        OpenAI(base_url=server.openai_url, api_key=server.api_key)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

#: Variables that must not leak into the server (real keys, proxies, base URLs).
UNSAFE_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_HTTP_BASE_URL",
    "DASHSCOPE_API_KEY_FILE_PATH",
    "KIT_SERVER_API_KEYS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass(frozen=True)
class KitServer:
    """A running ``kit serve``: where it listens, the key it accepts, its output file."""

    host: str
    port: int
    api_key: str
    process: subprocess.Popen[bytes]
    output: Path
    database: str

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def dashscope_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def read_output(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment minus keys and proxies, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSAFE_ENV}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


def wait_until_ready(server: KitServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"kit serve exited with {server.process.returncode}:\n{server.read_output()}"
                )
            try:
                if http.get(f"{server.openai_url}/assistants?limit=1", headers=headers).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"kit serve did not answer within {timeout}s:\n{server.read_output()}")


def stop(server: KitServer, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    """Signal the server and wait for it; kill it if it hangs. Returns the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextlib.contextmanager
def running_kit_server(
    *,
    api_key: str = "conformance-key",
    database: str | None = ":memory:",
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    output_dir: Path | None = None,
    pass_key: bool = True,
) -> Iterator[KitServer]:
    """``python -m assistant_kit serve`` on a free loopback port, ready when this yields.

    The process runs in ``output_dir`` (its project folder; a temporary one by default) and its
    output goes to a log file there. ``database=None`` leaves ``--db`` out (the default store);
    ``pass_key=False`` leaves ``--api-key`` out (keys from ``env`` or none) while ``api_key`` is
    still the key the readiness probe sends.
    """
    host = "127.0.0.1"
    port = free_port(host)
    folder = Path(output_dir or tempfile.mkdtemp(prefix="kit-serve-"))
    output = folder / f"kit-serve-{port}.log"
    args = [sys.executable, "-m", "assistant_kit", "serve", "--host", host, "--port", str(port)]
    if database is not None:
        args += ["--db", database]
    if pass_key:
        args += ["--api-key", api_key]
    args += list(extra_args)
    with output.open("wb") as sink:
        process = subprocess.Popen(
            args, stdout=sink, stderr=subprocess.STDOUT, env=server_env(env), cwd=folder
        )
    server = KitServer(host, port, api_key, process, output, database or "")
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop(server)
