"""Tokens/s of the local model: llama-cpp-python called directly, through LlamaCppBackend, and
through the server (a streamed run from ``kit serve``, read as SSE by the kit's OpenAI client).

Run: ``python bench/local_model.py [--max-tokens 128] [--repeat 3] [--threads N]``.
Needs the local-model extra. Every path decodes the same fixed prompt greedily, so they
produce the same tokens; the figure is completion tokens (counted by the model's tokenizer
on the finished text, the same way for every path) over wall time from the request to the
last fragment. The goals: the backend and the server's stream each within 10% of the direct call.

The server is ``kit serve`` on a free loopback port in a folder without kit.yaml, so the
model routes to the default llama-cpp backend, as on a fresh machine. Its time includes
creating the run, the run engine, the event log and SSE framing; the thread is created
beforehand. ``measure()`` takes any async stream of text fragments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from assistant_kit.api.base import AssistantClient, AssistantParams, MessageParams
from assistant_kit.api.openai import OpenAIClient
from assistant_kit.api.runs import RunParams
from assistant_kit.server.models.base import ChatMessage, ModelRequest, TextDelta
from assistant_kit.server.models.llama_cpp import LlamaCppBackend

PROMPT = "Write a long story about a lighthouse keeper and a storm."


@dataclass(frozen=True, slots=True)
class Measurement:
    text: str
    tokens: int
    seconds: float
    first_token_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """After the first token: the decode rate without the prompt's evaluation."""
        rest = self.seconds - self.first_token_s
        return (self.tokens - 1) / rest if rest > 0 else 0.0


async def measure(
    start: Callable[[], AsyncIterator[str]], count_tokens: Callable[[str], int]
) -> Measurement:
    """Time one async stream of text fragments from the request to its last fragment."""
    began = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    async for fragment in start():
        if first is None and fragment:
            first = time.perf_counter() - began
        parts.append(fragment)
    seconds = time.perf_counter() - began
    text = "".join(parts)
    return Measurement(text, count_tokens(text), seconds, first or seconds)


def direct_stream(llama: object, max_tokens: int, repeat_penalty: float) -> AsyncIterator[str]:
    """llama-cpp-python's own streaming chat completion (run inline: nothing else to serve)."""

    async def fragments() -> AsyncIterator[str]:
        llama.reset()  # type: ignore[attr-defined]  # evaluate the prompt, as the backend does
        chunks = llama.create_chat_completion(  # type: ignore[attr-defined]
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            temperature=0,
            max_tokens=max_tokens,
            repeat_penalty=repeat_penalty,
            seed=0,
        )
        for chunk in chunks:
            yield chunk["choices"][0]["delta"].get("content") or ""

    return fragments()


def backend_stream(backend: LlamaCppBackend, max_tokens: int) -> AsyncIterator[str]:
    async def fragments() -> AsyncIterator[str]:
        request = ModelRequest(
            model="bench",
            messages=(ChatMessage("user", PROMPT),),
            temperature=0,
            max_tokens=max_tokens,
        )
        async for event in backend.stream(request):
            if isinstance(event, TextDelta):
                yield event.text

    return fragments()


def server_stream(
    client: AssistantClient, assistant_id: str, thread_id: str, max_tokens: int
) -> AsyncIterator[str]:
    """A streamed run on ``kit serve``: the text of its ``thread.message.delta`` events."""

    async def fragments() -> AsyncIterator[str]:
        params = RunParams(
            assistant_id=assistant_id, temperature=0, max_completion_tokens=max_tokens
        )
        async with contextlib.aclosing(client.stream_run(thread_id, params)) as events:
            async for event in events:
                if event.event == "thread.message.delta":
                    yield event.text

    return fragments()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def kit_serve() -> Iterator[str]:
    """``kit serve`` with the default model routing; yields its OpenAI base URL."""
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-local-model-"))
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    log = (folder / "serve.log").open("wb")
    args = [sys.executable, "-m", "assistant_kit", "serve", "--port", str(port), "--db", ":memory:"]
    process = subprocess.Popen(args, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((folder / "serve.log").read_text()) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def report(name: str, runs: list[Measurement]) -> float:
    rate = statistics.median(m.tokens_per_s for m in runs)
    decode = statistics.median(m.decode_tokens_per_s for m in runs)
    first = statistics.median(m.first_token_s for m in runs)
    print(
        f"{name:<26} {rate:6.1f} tokens/s overall, {decode:6.1f} decoding, first token "
        f"{first * 1000:4.0f} ms  ({runs[0].tokens} tokens, median of {len(runs)})"
    )
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import llama_cpp

    backend = LlamaCppBackend(n_threads=args.threads)
    path = str(backend.model_path())
    llama = llama_cpp.Llama(  # the backend's thread settings, for a like-for-like comparison
        model_path=path,
        n_ctx=backend.n_ctx,
        seed=0,
        n_threads=backend.n_threads,
        n_threads_batch=backend.n_threads,
        verbose=False,
    )
    repeat_penalty = 1.1  # the backend's default; both paths must sample alike

    def count(text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False))

    backend.count_tokens([ChatMessage("user", PROMPT)])  # load outside the timings
    direct: list[Measurement] = []
    through: list[Measurement] = []
    served: list[Measurement] = []
    with kit_serve() as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
            client = OpenAIClient(http, api_key="bench")
            assistant = await client.create_assistant(AssistantParams(model="bench", name="b"))

            async def server_run() -> Measurement:
                thread = await client.create_thread(messages=[MessageParams(PROMPT)])
                return await measure(
                    lambda: server_stream(client, assistant.id, thread.id, args.max_tokens),
                    count,
                )

            await server_run()  # the server loads its model on the first run: not timed
            for _ in range(args.repeat):  # interleaved, so machine load hits all alike
                direct.append(
                    await measure(
                        lambda: direct_stream(llama, args.max_tokens, repeat_penalty), count
                    )
                )
                through.append(
                    await measure(lambda: backend_stream(backend, args.max_tokens), count)
                )
                served.append(await server_run())

    print(f"model {path}, prompt {PROMPT!r}, max_tokens {args.max_tokens}")
    a = report("llama-cpp-python direct", direct)
    b = report("LlamaCppBackend.stream", through)
    c = report("kit serve, streamed run", served)
    print(f"backend / direct: {b / a:.3f}  (goal >= 0.90)")
    print(f"server / direct:  {c / a:.3f}  (goal >= 0.90)")
    # machine-readable figures for bench/run_all.py
    print(f"FIGURE local_model_tokens_per_s={b:.1f} unit=tokens/s")
    print(f"FIGURE local_model_backend_over_direct={b / a:.3f} goal=min:0.9 unit=ratio")
    print(f"FIGURE local_model_server_tokens_per_s={c:.1f} unit=tokens/s")
    print(f"FIGURE local_model_server_over_direct={c / a:.3f} goal=min:0.9 unit=ratio")
    if not direct[0].text == through[0].text == served[0].text:
        print("note: the paths produced different text")
    await backend.aclose()
    llama.close()


if __name__ == "__main__":
    asyncio.run(main())
