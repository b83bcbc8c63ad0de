"""Throughput of runs: concurrent one-turn runs with the scripted model over loopback.

Starts ``kit serve`` (a subprocess on a free loopback port, SQLite file in a temp dir) with a
kit.yaml routing every model to the scripted backend, creates one assistant, then runs
``--connections`` keep-alive clients for ``--seconds``. Each client repeats one run:

    poll:   POST /v1/threads/runs (a new thread with one user message, stream false),
            then GET /v1/threads/{id}/runs/{id} every --poll-ms until the run is completed
    stream: POST /v1/threads/runs with stream true, reading the SSE body until
            thread.run.completed (then `done`)

and records the time from sending the create to seeing ``completed``. Prints runs/s and p50/p99
of that latency, the server's CPU per run, and errors. The store runs SQLite in WAL mode with
``synchronous = NORMAL`` (commits are not fsynced one by one; a crash can lose the last moments
of writes but never corrupts the file).

    python bench/runs.py --seconds 10 --connections 32 --mode poll
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

KEY = "bench-key"
KIT_YAML = """\
server:
  models:
    default: {backend: scripted, script: model.yaml, delay_ms: %(delay)s}
"""
SCRIPT = """\
rules:
  - user: "(?i)hello"
    reply: "Hello! This is a scripted reply of a few words, streamed in fragments."
"""


class Connection:
    """One keep-alive HTTP/1.1 connection: JSON requests, plain and chunked responses."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def send(self, method: str, path: str, body: bytes | None = None) -> dict[str, str]:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {KEY}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        headers = {"status": status_line.split(b" ", 2)[1].decode()}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                return headers
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        assert self.reader is not None
        headers = await self.send(method, path, body)
        if headers.get("transfer-encoding") == "chunked":
            return int(headers["status"]), b"".join([c async for c in self.chunks()])
        payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(headers["status"]), payload

    async def chunks(self) -> AsyncIterator[bytes]:
        assert self.reader is not None
        while True:
            size = int((await self.reader.readline()).strip() or b"0", 16)
            if size == 0:
                await self.reader.readline()
                return
            data = await self.reader.readexactly(size)
            await self.reader.readline()
            yield data


async def one_run_poll(conn: Connection, body: bytes, poll_s: float) -> bool:
    status, payload = await conn.request("POST", "/v1/threads/runs", body)
    if status != 200:
        return False
    run = json.loads(payload)
    path = f"/v1/threads/{run['thread_id']}/runs/{run['id']}"
    while run["status"] in ("queued", "in_progress"):
        await asyncio.sleep(poll_s)
        status, payload = await conn.request("GET", path)
        if status != 200:
            return False
        run = json.loads(payload)
    return bool(run["status"] == "completed")


async def one_run_stream(conn: Connection, body: bytes) -> tuple[bool, float]:
    headers = await conn.send("POST", "/v1/threads/runs", body)
    completed_at = 0.0
    buffer = b""
    async for chunk in conn.chunks():
        buffer += chunk
        if not completed_at and b"event: thread.run.completed" in buffer:
            completed_at = time.perf_counter()
        buffer = buffer[-64:]
    return headers["status"] == "200" and completed_at > 0, completed_at


async def client(
    host: str,
    port: int,
    deadline: float,
    mode: str,
    body: bytes,
    poll_s: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    conn = Connection(host, port)
    await conn.open()
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            if mode == "poll":
                ok = await one_run_poll(conn, body, poll_s)
                end = time.perf_counter()
            else:
                ok, end = await one_run_stream(conn, body)
            if ok:
                latencies.append(end - start)
            else:
                errors.append(mode)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def kit_serve(
    delay_ms: float, kit_yaml: str | None = None, database: Path | None = None
) -> Iterator[tuple[str, int, int]]:
    """``kit serve`` with the scripted model (``model.yaml``) of ``delay_ms``, or ``kit_yaml``;
    on a fresh database file, or ``database``."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-runs-"))
    text = kit_yaml if kit_yaml is not None else KIT_YAML % {"delay": delay_ms}
    (folder / "kit.yaml").write_text(text, encoding="utf-8")
    (folder / "model.yaml").write_text(SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env["KIT_SERVER_API_KEYS"] = KEY
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistant_kit",
            "serve",
            "--port",
            str(port),
            "--db",
            str(database or folder / "server.db"),
        ],
        env=env,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((folder / "serve.log").read_text()) from None
                time.sleep(0.05)
        yield "127.0.0.1", port, process.pid
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def bench(args: argparse.Namespace, host: str, port: int, pid: int) -> None:
    setup = Connection(host, port)
    await setup.open()
    status, payload = await setup.request(
        "POST", "/v1/assistants", b'{"model":"bench","name":"bench"}'
    )
    await setup.close()
    assert status == 200, payload
    assistant = json.loads(payload)["id"]
    body = json.dumps(
        {
            "assistant_id": assistant,
            "thread": {"messages": [{"role": "user", "content": "hello there"}]},
            "stream": args.mode == "stream",
        }
    ).encode()
    poll_s = args.poll_ms / 1000

    async def wave(seconds: float, latencies: list[float], errors: list[str]) -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                client(host, port, deadline, args.mode, body, poll_s, latencies, errors)
                for _ in range(args.connections)
            )
        )

    if args.warmup > 0:
        await wave(args.warmup, [], [])
    latencies: list[float] = []
    errors: list[str] = []
    server_cpu = cpu_seconds(pid)
    client_cpu = time.process_time()
    start = time.perf_counter()
    await wave(args.seconds, latencies, errors)
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    server_end = cpu_seconds(pid)
    runs = len(latencies)
    print(
        f"runs ({args.mode}): {args.connections} connections, {elapsed:.1f} s, "
        f"model delay {args.delay_ms} ms, {os.cpu_count()} CPUs"
    )
    if not runs:
        print(f"no run completed; errors: {len(errors)}")
        print(f"FIGURE runs_per_s_{args.mode}=0 goal=min:200 unit=runs/s")
        return
    print(f"throughput: {runs / elapsed:,.1f} runs/s ({runs} runs completed)")
    print(
        f"create -> completed: p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms"
    )
    print(f"errors: {len(errors)}")
    # machine-readable figures for bench/run_all.py
    print(f"FIGURE runs_per_s_{args.mode}={runs / elapsed:.1f} goal=min:200 unit=runs/s")
    print(f"FIGURE run_p50_ms_{args.mode}={pct(latencies, 0.5):.1f} unit=ms (create -> completed)")
    print(f"FIGURE run_p99_ms_{args.mode}={pct(latencies, 0.99):.1f} unit=ms (create -> completed)")
    print(f"FIGURE run_errors_{args.mode}={len(errors)} goal=max:0 unit=runs")
    if server_cpu is not None and server_end is not None:
        per_run = (server_end - server_cpu) / runs
        print(
            f"server CPU: {per_run * 1e3:.2f} ms/run (one process: at most ~{1 / per_run:,.0f} "
            f"runs/s on a free core); bench client CPU: {client_cpu / runs * 1e3:.2f} ms/run"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average: {load:.2f} (other work on the machine skews figures)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["poll", "stream"], default="poll")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--poll-ms", type=float, default=20.0, help="poll interval (poll mode)")
    parser.add_argument("--delay-ms", type=float, default=0, help="scripted model latency")
    args = parser.parse_args()
    with kit_serve(args.delay_ms) as (host, port, pid):
        asyncio.run(bench(args, host, port, pid))


if __name__ == "__main__":
    main()
