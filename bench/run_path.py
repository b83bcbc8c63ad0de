"""The run path under load: history growth, stream integrity, model connections, turn overhead.

Each part starts its own ``kit serve`` (``bench/runs.py``'s helper: a subprocess on loopback, a
SQLite file in a temp dir) and talks plain HTTP/1.1 to it, so the same script measures any
checkout: ``PYTHONPATH=/path/to/other/checkout python bench/run_path.py`` compares a baseline.

    growth       run latency (create -> done, streamed) on threads of 10 / 100 / 1,000 / 5,000
                 messages with truncation last_messages 20 and auto (scripted model, no delay)
    delete       DELETE of one thread when the event log holds --events rows (other threads')
    streams      10 / 100 / 500 concurrent streamed runs against a 3 s model (longer than a
                 reader's quiet wait): p99 and how many
                 streams ended without their terminal run event and ``done``
    connections  TCP connections the openai backend opens for 50 sequential runs (loopback fake
                 chat-completions server with keep-alive)
    overhead     median time of a one-turn streamed run through kit serve minus a direct streamed
                 call to the same fake chat-completions server

    python bench/run_path.py                      # every part
    python bench/run_path.py --parts growth,delete --events 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runs import Connection, cpu_seconds, kit_serve, pct

SIZES = (10, 100, 1000, 5000)
STREAMS = (10, 100, 500)
MODEL_CALLS = 50
#: The scripted model's delay for the streams part (ms).
STREAM_MODEL_MS = 3000
T = TypeVar("T")


async def make_assistant(conn: Connection, model: str = "bench") -> str:
    status, payload = await conn.request(
        "POST", "/v1/assistants", json.dumps({"model": model}).encode()
    )
    assert status == 200, payload
    return str(json.loads(payload)["id"])


async def streamed_run(
    conn: Connection, path: str, body: Mapping[str, object]
) -> tuple[float, list[str]]:
    """POST a streamed run; seconds to the end of the stream and the event names seen."""
    start = time.perf_counter()
    headers = await conn.send("POST", path, json.dumps({**body, "stream": True}).encode())
    assert headers["status"] == "200", headers
    text = b"".join([c async for c in conn.chunks()]).decode()
    names = [
        line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("event:")
    ]
    return time.perf_counter() - start, names


# -- growth ----------------------------------------------------------------------------------


async def growth(host: str, port: int, runs: int) -> dict[tuple[str, int], float]:
    conn = Connection(host, port)
    await conn.open()
    assistant = await make_assistant(conn)
    warm = {"assistant_id": assistant, "thread": {"messages": [{"role": "user", "content": "hi"}]}}
    for _ in range(10):  # warm up the server before the first point
        await streamed_run(conn, "/v1/threads/runs", warm)
    medians: dict[tuple[str, int], float] = {}
    for size in SIZES:
        status, payload = await conn.request("POST", "/v1/threads", b"{}")
        thread = json.loads(payload)["id"]
        for n in range(size):
            role = "user" if n % 2 == 0 else "assistant"
            body = json.dumps({"role": role, "content": f"message {n} " + "word " * 20}).encode()
            status, payload = await conn.request("POST", f"/v1/threads/{thread}/messages", body)
            assert status == 200, payload
        for mode, strategy in (
            ("last_messages", {"type": "last_messages", "last_messages": 20}),
            ("auto", {"type": "auto"}),
        ):
            times = []
            for _ in range(runs):
                seconds, names = await streamed_run(
                    conn,
                    f"/v1/threads/{thread}/runs",
                    {"assistant_id": assistant, "truncation_strategy": strategy},
                )
                assert names[-2:] == ["thread.run.completed", "done"], names[-3:]
                times.append(seconds)
            medians[(mode, size)] = statistics.median(times) * 1000
            print(f"growth: {size:>5} messages, {mode:<13} median {medians[(mode, size)]:.1f} ms")
    await conn.close()
    return medians


# -- delete ----------------------------------------------------------------------------------


def seed_events(database: Path, events: int) -> None:
    """``events`` log rows of 1,000 other threads, written straight into the file."""
    with sqlite3.connect(database) as db:
        rows = (
            (f"run{i % 5000}", f"thread{i % 1000}", 0, "thread.run.step.delta", '{"kind":"x"}')
            for i in range(events)
        )
        db.executemany(
            "INSERT INTO run_events (run_id, thread_id, created_at, event, data) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )


async def delete_thread(host: str, port: int, repeats: int) -> float:
    conn = Connection(host, port)
    await conn.open()
    times = []
    for _ in range(repeats):
        status, payload = await conn.request("POST", "/v1/threads", b"{}")
        thread = json.loads(payload)["id"]
        start = time.perf_counter()
        status, payload = await conn.request("DELETE", f"/v1/threads/{thread}")
        times.append(time.perf_counter() - start)
        assert status == 200, payload
    await conn.close()
    return statistics.median(times) * 1000


# -- streams ---------------------------------------------------------------------------------


async def streams(host: str, port: int, count: int) -> tuple[float, int]:
    setup = Connection(host, port)
    await setup.open()
    assistant = await make_assistant(setup)
    await setup.close()

    async def one(i: int) -> tuple[float, bool]:
        conn = Connection(host, port)
        await conn.open()
        try:
            prefix = "/v1" if i % 2 else "/api/v1"
            body = {
                "assistant_id": assistant,
                "thread": {"messages": [{"role": "user", "content": "hello"}]},
            }
            seconds, names = await streamed_run(conn, f"{prefix}/threads/runs", body)
            return seconds, names[-2:] == ["thread.run.completed", "done"]
        finally:
            await conn.close()

    results = await asyncio.gather(*(one(i) for i in range(count)))
    lost = sum(1 for _, whole in results if not whole)
    return pct([s for s, _ in results], 0.99), lost


# -- a fake chat-completions server ----------------------------------------------------------


class FakeModel:
    """Loopback chat-completions with keep-alive, streamed replies; counts connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        #: The kit serve process routed to this model (for its CPU time).
        self.kit_pid = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readline():
                length = 0
                while line := (await reader.readline()).strip():
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                for piece in ("Hello", " there", "!"):
                    data = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                    self._chunk(writer, f"data: {json.dumps(data)}\n\n".encode())
                end = {
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3},
                }
                self._chunk(writer, f"data: {json.dumps(end)}\n\n".encode())
                self._chunk(writer, b"data: [DONE]\n\n")
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def openai_yaml(port: int) -> str:
    return (
        "server:\n  models:\n"
        f"    default: {{backend: openai, base_url: 'http://127.0.0.1:{port}/v1', model: fake}}\n"
    )


async def with_fake_model(work: Callable[[FakeModel, str, int], Awaitable[T]]) -> T:
    """``work(fake, host, port)`` against kit serve routed to a fresh fake model."""
    fake = FakeModel()
    await fake.start()
    loop = asyncio.get_running_loop()
    manager = kit_serve(0, openai_yaml(fake.port))  # its readiness wait blocks: in a thread
    host, port, fake.kit_pid = await loop.run_in_executor(None, manager.__enter__)
    try:
        return await work(fake, host, port)
    finally:
        await loop.run_in_executor(None, manager.__exit__, None, None, None)
        assert fake.server is not None
        fake.server.close()


async def connections(fake: FakeModel, host: str, port: int) -> int:
    conn = Connection(host, port)
    await conn.open()
    assistant = await make_assistant(conn)
    body = {"assistant_id": assistant, "thread": {"messages": [{"role": "user", "content": "hi"}]}}
    before = fake.connections
    for _ in range(MODEL_CALLS):
        _, names = await streamed_run(conn, "/v1/threads/runs", body)
        assert names[-2:] == ["thread.run.completed", "done"], names
    await conn.close()
    return fake.connections - before


async def overhead(fake: FakeModel, host: str, port: int, turns: int) -> tuple[float, float, float]:
    """Median ms of a direct streamed model call and of a one-turn streamed run, and the
    server's CPU ms per turn."""
    direct = Connection("127.0.0.1", fake.port)
    await direct.open()
    messages = [{"role": "user", "content": "hi"}]
    body = json.dumps({"model": "fake", "messages": messages, "stream": True}).encode()
    direct_times = []
    for _ in range(turns):
        start = time.perf_counter()
        await direct.send("POST", "/v1/chat/completions", body)
        async for _ in direct.chunks():
            pass
        direct_times.append(time.perf_counter() - start)
    await direct.close()
    conn = Connection(host, port)
    await conn.open()
    assistant = await make_assistant(conn)
    run = {"assistant_id": assistant, "thread": {"messages": messages}}
    for _ in range(20):  # warm up
        await streamed_run(conn, "/v1/threads/runs", run)
    cpu = cpu_seconds(fake.kit_pid) or 0.0
    turn_times = [(await streamed_run(conn, "/v1/threads/runs", run))[0] for _ in range(turns)]
    cpu = ((cpu_seconds(fake.kit_pid) or 0.0) - cpu) / turns
    await conn.close()
    return statistics.median(direct_times) * 1000, statistics.median(turn_times) * 1000, cpu * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="growth,delete,streams,connections,overhead")
    parser.add_argument("--runs", type=int, default=15, help="runs per growth point")
    parser.add_argument("--events", type=int, default=1_000_000, help="event rows for delete")
    parser.add_argument("--turns", type=int, default=200, help="turns for the overhead")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"run path: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    if "growth" in parts:
        with kit_serve(0) as (host, port, _):
            medians = asyncio.run(growth(host, port, args.runs))
        for mode in ("last_messages", "auto"):
            for size in SIZES:
                print(f"FIGURE growth_{mode}_{size}_ms={medians[(mode, size)]:.1f} unit=ms per run")
        ratio = medians[("last_messages", 5000)] / medians[("last_messages", 10)]
        print(f"FIGURE growth_last_messages_5000_over_10={ratio:.2f} goal=max:1.5 unit=x")
        auto = medians[("auto", 5000)] / medians[("auto", 1000)]
        print(f"FIGURE growth_auto_5000_over_1000={auto:.2f} goal=max:5 unit=x (linear: 5)")

    if "delete" in parts:
        folder = Path(tempfile.mkdtemp(prefix="kit-bench-delete-"))
        database = folder / "server.db"
        with kit_serve(0, None, database) as (host, port, _):
            pass
        seed_events(database, args.events)
        with kit_serve(0, None, database) as (host, port, _):
            ms = asyncio.run(delete_thread(host, port, 20))
        print(f"delete: one thread with {args.events:,} event rows in the log: median {ms:.2f} ms")
        print(f"FIGURE delete_thread_ms_{args.events}_events={ms:.2f} unit=ms")

    if "streams" in parts:
        for count in STREAMS:
            with kit_serve(STREAM_MODEL_MS) as (host, port, _):
                p99, lost = asyncio.run(streams(host, port, count))
            print(
                f"streams: {count} concurrent, p99 {p99:.0f} ms, {lost} without their final events"
            )
            print(f"FIGURE streams_{count}_p99_ms={p99:.0f} unit=ms (model {STREAM_MODEL_MS:,} ms)")
            print(f"FIGURE streams_{count}_lost={lost} goal=max:0 unit=streams")

    if "connections" in parts:
        opened = asyncio.run(with_fake_model(connections))
        print(f"connections: {opened} for {MODEL_CALLS} sequential model calls")
        print(
            f"FIGURE model_connections_per_{MODEL_CALLS}_calls={opened} goal=max:1 unit=connections"
        )

    if "overhead" in parts:

        async def measure(fake: FakeModel, host: str, port: int) -> tuple[float, float, float]:
            return await overhead(fake, host, port, args.turns)

        direct, turn, cpu = asyncio.run(with_fake_model(measure))
        print(
            f"overhead: direct call {direct:.2f} ms, turn through kit serve {turn:.2f} ms "
            f"(server CPU {cpu:.2f} ms per turn)"
        )
        print(f"FIGURE turn_overhead_ms={turn - direct:.2f} goal=max:2 unit=ms over a direct call")
        print(f"FIGURE turn_server_cpu_ms={cpu:.2f} unit=ms of kit serve CPU per turn")


if __name__ == "__main__":
    main()
