"""`kit test -j 8` against the seed's sequential pattern, on one `kit serve`.

Starts ``kit serve`` on a free loopback port with a project whose models all route to the
scripted backend at ``--delay-ms`` (default 300: a hosted model's pace) per model call, declares
``--tests`` (default 50) one-turn conversations, then times:

1. the kit: ``run_suite`` (what ``kit test --ephemeral -j 8 --target served`` runs), over HTTP;
2. the seed's pattern with the official ``dashscope`` SDK, one conversation after the other:
   ``Threads.create``, ``Messages.create``, ``Runs.create``, ``Runs.wait`` (polls every 1 s),
   ``Messages.list``, and the same check on the reply;
3. the kit's own overhead per turn: a sequential kit pass (``-j 1``) with every HTTP exchange
   timed (request sent to response body closed); overhead = (wall time - time during which an
   exchange was under way) / turns: what the kit itself adds to each turn.

    python bench/test_suite.py                       # 50 tests, 300 ms, -j 8
    python bench/test_suite.py --tests 20 --jobs 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant_kit.testing.records import Verdict  # noqa: E402
from assistant_kit.testing.runner import RunOptions, load_test_project, run_suite  # noqa: E402

KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_project(root: Path, tests: int, delay_ms: int, port: int) -> None:
    (root / "assistants").mkdir()
    script = {"rules": [{"user": "(?i)capital", "reply": "The capital of France is Paris."}]}
    (root / "script.yaml").write_text(yaml.safe_dump(script))
    kit = {
        "specs": "assistants",
        "default_target": "served",
        "targets": {
            "served": {
                "provider": "local",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "api_key_env": "KIT_BENCH_KEY",
            },
        },
        "server": {
            "models": {
                "default": {"backend": "scripted", "script": "script.yaml", "delay_ms": delay_ms}
            }
        },
        "test": {"timeout_s": 60},
    }
    (root / "kit.yaml").write_text(yaml.safe_dump(kit, sort_keys=False))
    spec = {
        "name": "bench-bot",
        "model": "qwen-max",
        "instructions": "Answer geography questions.",
        "tests": [
            {
                "name": f"capital {i:03}",
                "turns": [
                    {
                        "user": f"What is the capital of France? ({i})",
                        "expect": [{"contains": "Paris"}],
                    }
                ],
            }
            for i in range(tests)
        ],
    }
    (root / "assistants" / "bench-bot.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@contextlib.contextmanager
def kit_serve(root: Path, port: int) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    args = [
        sys.executable,
        "-m",
        "assistant_kit",
        "serve",
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--db",
        str(root / "server.db"),
        "--config",
        str(root / "kit.yaml"),
    ]
    log = (root / "serve.log").open("wb")
    process = subprocess.Popen(args, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(
                    f"{base}/v1/assistants",
                    headers={"Authorization": f"Bearer {KEY}"},
                    trust_env=False,
                    timeout=1,
                ).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_text = (root / "serve.log").read_text()
                    raise SystemExit("kit serve did not start:\n" + log_text) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(15)
        log.close()


class TimedStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any, started: float, owner: TimingTransport) -> None:
        self.inner, self.started, self.owner = inner, started, owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.owner.spans.append((self.started, time.perf_counter()))


class TimingTransport(httpx.AsyncBaseTransport):
    """Keeps when every exchange ran, from sending the request to closing the body."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.spans: list[tuple[float, float]] = []

    @property
    def requests(self) -> int:
        return len(self.spans)

    @property
    def seconds(self) -> float:
        """Time during which at least one exchange was under way (overlaps counted once)."""
        busy, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop <= end:
                continue
            busy += stop - max(start, end)
            end = stop
        return busy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=TimedStream(response.stream, started, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def run_kit(root: Path, jobs: int, timing: list[TimingTransport]) -> tuple[float, Any]:
    os.environ["KIT_BENCH_KEY"] = KEY
    project = load_test_project(cwd=root)

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        transport = TimingTransport(inner)
        timing.append(transport)
        return transport

    options = RunOptions(ephemeral=True, jobs=jobs, wrap=wrap)
    started = time.perf_counter()
    suite = asyncio.run(run_suite(project, None, options))
    return time.perf_counter() - started, suite


def run_seed(base: str, tests: int) -> float:
    """The seed's pattern with the official dashscope SDK, sequentially."""
    os.environ["DASHSCOPE_HTTP_BASE_URL"] = f"{base}/api/v1"
    os.environ["DASHSCOPE_API_KEY"] = KEY
    import warnings

    import dashscope

    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"dashscope\..*|__main__")

    dashscope.base_http_api_url = f"{base}/api/v1"
    dashscope.api_key = KEY
    bot = dashscope.Assistants.create(
        model="qwen-max", name="Bench Bot", instructions="Answer geography questions."
    )
    started = time.perf_counter()
    passed = 0
    for i in range(tests):
        thread = dashscope.Threads.create()
        dashscope.Messages.create(thread.id, content=f"What is the capital of France? ({i})")
        run = dashscope.Runs.create(thread.id, assistant_id=bot.id)
        run = dashscope.Runs.wait(run.id, thread_id=thread.id)
        messages = dashscope.Messages.list(thread.id)
        reply = "".join(
            part.text.value
            for m in messages.data
            if m.role == "assistant"
            for part in m.content
            if getattr(part, "type", "") == "text"
        )
        passed += "Paris" in reply
    took = time.perf_counter() - started
    dashscope.Assistants.delete(bot.id)
    if passed != tests:
        print(f"  warning: the seed pattern saw Paris in {passed}/{tests} replies")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--delay-ms", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--skip-seed", action="store_true", help="Time only the kit.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        write_project(root, args.tests, args.delay_ms, port)
        with kit_serve(root, port) as base:
            print(
                f"{args.tests} one-turn conversations, scripted model at {args.delay_ms} ms "
                f"per call, kit serve at {base}"
            )
            timing: list[TimingTransport] = []
            kit_s, suite = run_kit(root, args.jobs, timing)
            ok = suite.count(Verdict.PASS)
            print(
                f"kit test -j {args.jobs}:        {kit_s:7.2f} s  ({ok}/{args.tests} passed, "
                f"{timing[0].requests} HTTP exchanges)"
            )
            seed_s = None
            if not args.skip_seed:
                seed_s = run_seed(base, args.tests)
                print(f"seed pattern (dashscope SDK, Runs.wait): {seed_s:7.2f} s")
                print(f"ratio: {seed_s / kit_s:.1f}x (goal >= 20x)")
                # machine-readable figures for bench/run_all.py
                print(
                    f"FIGURE test_suite_speedup={seed_s / kit_s:.1f} goal=min:20 "
                    f"unit=x (seed SDK loop / kit test -j {args.jobs})"
                )
            timing = []
            seq_s, seq = run_kit(root, 1, timing)
            turns = sum(len(r.turns) for t in seq.tests for r in t.repetitions)
            http_s = timing[0].seconds
            overhead_ms = (seq_s - http_s) / max(turns, 1) * 1000
            print(
                f"kit test -j 1:        {seq_s:7.2f} s, {http_s:.2f} s of it in "
                f"{timing[0].requests} HTTP exchanges"
            )
            print(f"kit overhead per turn over its HTTP calls: {overhead_ms:.2f} ms (goal < 5 ms)")
            print(
                f"FIGURE test_suite_kit_s={kit_s:.2f} unit=s ({args.tests} tests, -j {args.jobs})"
            )
            print(f"FIGURE test_suite_overhead_ms_per_turn={overhead_ms:.2f} goal=max:5 unit=ms")


if __name__ == "__main__":
    main()
