"""Throughput of the Assistant API server: concurrent clients creating and reading objects.

Starts ``kit serve`` (a subprocess on a free loopback port, SQLite file in a temp dir unless
``--db`` says otherwise) or uses ``--url``, then runs ``--connections`` keep-alive clients for
``--seconds``. Each client repeats one cycle of mixed calls in both dialects:

    POST /v1/assistants, GET /api/v1/assistants/{id}, POST /api/v1/threads (body ""),
    POST /v1/threads/{id}/messages, GET /api/v1/threads/{id}/messages/{id},
    GET /v1/threads/{id}/messages?limit=20, POST /api/v1/assistants/{id} (update)

The client is a minimal HTTP/1.1 writer/reader on asyncio streams, so that the figures measure
the server rather than a heavy client; it still shares the machine's cores with the server.
Prints requests/s, p50/p99 latency per operation and overall, and error counts.

    python bench/server_crud.py --seconds 10 --connections 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

KEY = "bench-key"


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for JSON requests."""

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

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {KEY}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def client(
    host: str,
    port: int,
    deadline: float,
    latencies: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    conn = Connection(host, port)
    await conn.open()
    clock = time.perf_counter

    async def call(op: str, method: str, path: str, body: bytes | None = None) -> dict:
        start = clock()
        status, payload = await conn.request(method, path, body)
        latencies[op].append(clock() - start)
        if status != 200:
            errors[f"{op} {status}"] += 1
            return {}
        return json.loads(payload)

    try:
        while clock() < deadline:
            a = await call(
                "create_assistant",
                "POST",
                "/v1/assistants",
                b'{"model":"qwen-max","name":"bench","metadata":{"k":"v"}}',
            )
            aid = a.get("id", "asst_x")
            await call("get_assistant", "GET", f"/api/v1/assistants/{aid}")
            t = await call("create_thread", "POST", "/api/v1/threads", b'""')
            tid = t.get("id", "thread_x")
            m = await call(
                "create_message",
                "POST",
                f"/v1/threads/{tid}/messages",
                b'{"role":"user","content":"hello there"}',
            )
            mid = m.get("id", "msg_x")
            await call("get_message", "GET", f"/api/v1/threads/{tid}/messages/{mid}")
            await call("list_messages", "GET", f"/v1/threads/{tid}/messages?limit=20")
            await call(
                "update_assistant",
                "POST",
                f"/api/v1/assistants/{aid}",
                b'{"name":"renamed","file_ids":[],"metadata":null}',
            )
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) a process has used so far; Linux only, else None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def kit_serve(database: str | None) -> Iterator[tuple[str, int]]:
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-"))
    db = database or str(folder / "server.db")
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env["KIT_SERVER_API_KEYS"] = KEY
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant_kit", "serve", "--port", str(port), "--db", db],
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
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(
    url: str, connections: int, seconds: float, warmup: float, pid: int | None = None
) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if warmup > 0:
        await asyncio.gather(
            *(
                client(
                    host, port, time.perf_counter() + warmup, defaultdict(list), defaultdict(int)
                )
                for _ in range(connections)
            )
        )
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    server_cpu = cpu_seconds(pid)
    client_cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(
        *(client(host, port, start + seconds, latencies, errors) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    server_end = cpu_seconds(pid)
    everything = [x for values in latencies.values() for x in values]
    total = len(everything)
    print(f"server_crud: {connections} connections, {elapsed:.1f} s, {os.cpu_count()} CPUs")
    print(f"{'operation':<18} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for op, values in latencies.items():
        print(f"{op:<18} {len(values):>9} {pct(values, 0.5):>8.2f} {pct(values, 0.99):>8.2f}")
    print(f"{'all':<18} {total:>9} {pct(everything, 0.5):>8.2f} {pct(everything, 0.99):>8.2f}")
    print(
        f"throughput: {total / elapsed:,.0f} requests/s "
        f"(mean latency {statistics.fmean(everything) * 1000:.2f} ms)"
    )
    print(f"errors: {dict(errors) or 0}")
    # machine-readable figures for bench/run_all.py
    print(f"FIGURE crud_requests_per_s={total / elapsed:.0f} goal=min:1500 unit=req/s")
    print(f"FIGURE crud_p50_ms={pct(everything, 0.5):.2f} unit=ms")
    print(f"FIGURE crud_p99_ms={pct(everything, 0.99):.2f} unit=ms")
    print(f"FIGURE crud_errors={sum(errors.values())} goal=max:0 unit=requests")
    if server_cpu is not None and server_end is not None and total:
        per_request = (server_end - server_cpu) / total
        print(
            f"server CPU: {per_request * 1e6:.0f} us/request "
            f"(one process, so at most ~{1 / per_request:,.0f} requests/s on a free core); "
            f"bench client CPU: {client_cpu / total * 1e6:.0f} us/request"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average during the run: {load:.2f} (other work on the machine skews figures)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server (key: bench-key)")
    parser.add_argument("--db", help="store for the started server (default: a temp file)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args.url, args.connections, args.seconds, args.warmup))
        return
    with kit_serve(args.db) as (url, pid):
        asyncio.run(run(url, args.connections, args.seconds, args.warmup, pid))


if __name__ == "__main__":
    main()
