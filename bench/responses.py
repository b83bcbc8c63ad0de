"""One-turn Responses API calls per second beside Assistants runs, on one ``kit serve``.

Starts ``kit serve`` with the scripted model (as ``bench/runs.py`` does, with its helpers), then
for each of four workloads runs ``--connections`` keep-alive clients for ``--seconds``:

    assistants-stream:  POST /v1/threads/runs, stream true, read until thread.run.completed
    responses-plain:    POST /v1/responses (stream false; the reply is the finished response)
    responses-stream:   POST /v1/responses, stream true, read until response.completed
    responses-chain:    as responses-plain, continuing the client's previous response
                        (previous_response_id: the thread grows by two messages per call)

and prints calls/s and p50/p99 of create -> completed for each. The Responses path runs the same
engine as an Assistants run, so it should not be slower.

    python bench/responses.py --seconds 5 --connections 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runs import Connection, kit_serve, one_run_stream, pct

WORKLOADS = ("assistants-stream", "responses-plain", "responses-stream", "responses-chain")


async def one_response(conn: Connection, body: dict[str, object], stream: bool) -> tuple[bool, str]:
    """One response; True and its id when it completed."""
    payload = json.dumps({**body, "stream": stream}).encode()
    if not stream:
        status, raw = await conn.request("POST", "/v1/responses", payload)
        reply = json.loads(raw) if status == 200 else {}
        return reply.get("status") == "completed", str(reply.get("id", ""))
    headers = await conn.send("POST", "/v1/responses", payload)
    buffer = b""
    async for chunk in conn.chunks():
        buffer += chunk
    completed = b"event: response.completed" in buffer
    return headers["status"] == "200" and completed, ""


async def client(
    host: str, port: int, deadline: float, workload: str, assistant: str, latencies: list[float]
) -> int:
    conn = Connection(host, port)
    await conn.open()
    errors = 0
    previous = ""
    run_body = json.dumps(
        {
            "assistant_id": assistant,
            "thread": {"messages": [{"role": "user", "content": "hello there"}]},
            "stream": True,
        }
    ).encode()
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            if workload == "assistants-stream":
                ok, end = await one_run_stream(conn, run_body)
            else:
                body: dict[str, object] = {"model": "bench", "input": "hello there"}
                if workload == "responses-chain" and previous:
                    body["previous_response_id"] = previous
                ok, previous = await one_response(conn, body, workload == "responses-stream")
                end = time.perf_counter()
            if ok:
                latencies.append(end - start)
            else:
                errors += 1
    finally:
        await conn.close()
    return errors


async def bench(args: argparse.Namespace, host: str, port: int) -> None:
    setup = Connection(host, port)
    await setup.open()
    status, payload = await setup.request("POST", "/v1/assistants", b'{"model":"bench"}')
    await setup.close()
    assert status == 200, payload
    assistant = json.loads(payload)["id"]
    print(f"{args.connections} connections, {args.seconds:.0f} s each, {os.cpu_count()} CPUs")
    for workload in WORKLOADS:
        warm_until = time.perf_counter() + args.warmup
        await asyncio.gather(
            *(client(host, port, warm_until, workload, assistant, []) for _ in range(4))
        )
        latencies: list[float] = []
        start = time.perf_counter()
        deadline = start + args.seconds
        errors = sum(
            await asyncio.gather(
                *(
                    client(host, port, deadline, workload, assistant, latencies)
                    for _ in range(args.connections)
                )
            )
        )
        elapsed = time.perf_counter() - start
        rate = len(latencies) / elapsed
        name = workload.replace("-", "_")
        if not latencies:
            print(f"{workload}: nothing completed, {errors} errors")
            print(f"FIGURE {name}_per_s=0 unit=calls/s")
            continue
        p50, p99 = pct(latencies, 0.5), pct(latencies, 0.99)
        print(f"{workload}: {rate:,.1f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors} errors")
        print(f"FIGURE {name}_per_s={rate:.1f} unit=calls/s")
        print(f"FIGURE {name}_p50_ms={p50:.1f} unit=ms (create -> completed)")
        print(f"FIGURE {name}_p99_ms={p99:.1f} unit=ms (create -> completed)")
        print(f"FIGURE {name}_errors={errors} goal=max:0 unit=calls")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average: {load:.2f} (other work on the machine skews figures)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--delay-ms", type=float, default=0, help="scripted model latency")
    args = parser.parse_args()
    with kit_serve(args.delay_ms) as (host, port, _pid):
        asyncio.run(bench(args, host, port))


if __name__ == "__main__":
    main()
