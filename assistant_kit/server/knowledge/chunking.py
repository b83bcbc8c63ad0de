"""Cutting a document's text into overlapping chunks, counted in tokens.

OpenAI's strategies: ``auto`` is 800 tokens per chunk with 400 overlapping, ``static`` sets
``max_chunk_size_tokens`` (100..4096) and ``chunk_overlap_tokens`` (at most half of it)::

    strategy = ChunkingStrategy.from_body({"type": "static", "static": {...}})   # or ValueError
    for span in chunk_text(text, strategy): ...       # Span(start, end, tokens): text[start:end]

Tokens are counted without a BPE vocabulary (tiktoken downloads one; the server stays offline):
one token per word and per punctuation mark, the count the scripted backend uses for
truncation. For English prose that is within about 20% of cl100k's count, and it cuts at
word boundaries, so a chunk never splits a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class ChunkingStrategy:
    type: str = "auto"
    max_chunk_size_tokens: int = AUTO_MAX_TOKENS
    chunk_overlap_tokens: int = AUTO_OVERLAP_TOKENS

    @classmethod
    def from_body(cls, body: Mapping[str, Any] | None) -> ChunkingStrategy:
        """The strategy a request names (``None`` or ``{"type": "auto"}``: the default)."""
        if body is None:
            return cls()
        kind = body.get("type")
        if kind == "auto":
            return cls()
        if kind != "static":
            raise ValueError(f"chunking_strategy.type must be 'auto' or 'static', not {kind!r}")
        static = body.get("static")
        if not isinstance(static, Mapping):
            raise ValueError("chunking_strategy.static is required when type is 'static'")
        size = static.get("max_chunk_size_tokens")
        overlap = static.get("chunk_overlap_tokens")
        for name, value in (("max_chunk_size_tokens", size), ("chunk_overlap_tokens", overlap)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"chunking_strategy.static.{name} must be an integer")
        assert isinstance(size, int) and isinstance(overlap, int)
        if not MIN_CHUNK_TOKENS <= size <= MAX_CHUNK_TOKENS:
            raise ValueError(
                "chunking_strategy.static.max_chunk_size_tokens must be between "
                f"{MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}, not {size}"
            )
        if not 0 <= overlap <= size // 2:
            raise ValueError(
                "chunking_strategy.static.chunk_overlap_tokens must be between 0 and half of "
                f"max_chunk_size_tokens ({size // 2}), not {overlap}"
            )
        return cls("static", size, overlap)

    def as_body(self) -> dict[str, Any]:
        """How a vector store file shows it (OpenAI reports ``auto`` as its static values)."""
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_chunk_size_tokens,
                "chunk_overlap_tokens": self.chunk_overlap_tokens,
            },
        }


@dataclass(frozen=True, slots=True)
class Span:
    """One chunk: ``text[start:end]`` holds ``tokens`` tokens."""

    start: int
    end: int
    tokens: int


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def chunk_text(text: str, strategy: ChunkingStrategy) -> Iterator[Span]:
    """Windows of ``max_chunk_size_tokens`` tokens, each starting ``size - overlap`` after the
    previous one; the last window ends at the last token."""
    bounds = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    size, step = (
        strategy.max_chunk_size_tokens,
        (strategy.max_chunk_size_tokens - strategy.chunk_overlap_tokens),
    )
    first = 0
    while first < len(bounds):
        last = min(first + size, len(bounds))
        yield Span(bounds[first][0], bounds[last - 1][1], last - first)
        if last == len(bounds):
            return
        first += step
