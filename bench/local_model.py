"""Tokens/s of the local model: llama-cpp-python called directly vs through LlamaCppBackend.

Run: ``python bench/local_model.py [--max-tokens 128] [--repeat 3] [--threads N]``.
Needs the local-model extra. Every path decodes the same fixed prompt greedily, so they
produce the same tokens; the figure is completion tokens (counted by the model's tokenizer
on the finished text, the same way for every path) over wall time from the request to the
last fragment. The goal is the backend within 10% of the direct call.

``measure()`` takes any async stream of text fragments, so the through-the-server path
(SSE from ``kit serve``) plugs in beside the two measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

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
    llama = llama_cpp.Llama(
        model_path=path, n_ctx=backend.n_ctx, seed=0, n_threads=args.threads, verbose=False
    )
    repeat_penalty = 1.1  # the backend's default; both paths must sample alike

    def count(text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False))

    backend.count_tokens([ChatMessage("user", PROMPT)])  # load outside the timings
    direct: list[Measurement] = []
    through: list[Measurement] = []
    for _ in range(args.repeat):  # interleaved, so machine load hits both alike
        direct.append(
            await measure(lambda: direct_stream(llama, args.max_tokens, repeat_penalty), count)
        )
        through.append(await measure(lambda: backend_stream(backend, args.max_tokens), count))

    print(f"model {path}, prompt {PROMPT!r}, max_tokens {args.max_tokens}")
    a = report("llama-cpp-python direct", direct)
    b = report("LlamaCppBackend.stream", through)
    print(f"backend / direct: {b / a:.3f}  (goal >= 0.90)")
    # machine-readable figures for bench/run_all.py
    print(f"FIGURE local_model_tokens_per_s={b:.1f} unit=tokens/s")
    print(f"FIGURE local_model_backend_over_direct={b / a:.3f} goal=min:0.9 unit=ratio")
    if direct[0].text != through[0].text:
        print("note: the two paths produced different text")
    await backend.aclose()
    llama.close()


if __name__ == "__main__":
    asyncio.run(main())
