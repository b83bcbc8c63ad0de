"""Chunks are token windows with the requested overlap; strategies are checked like OpenAI's."""

from __future__ import annotations

import pytest

from assistant_kit.server.knowledge.chunking import ChunkingStrategy, chunk_text, count_tokens


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_auto_is_800_with_400_overlap() -> None:
    strategy = ChunkingStrategy.from_body({"type": "auto"})
    assert strategy == ChunkingStrategy.from_body(None)
    assert strategy.as_body() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }
    text = _words(2000)
    spans = list(chunk_text(text, strategy))
    assert [s.tokens for s in spans] == [800, 800, 800, 800]
    firsts = [text[s.start : s.end].split()[0] for s in spans]
    assert firsts == ["w0", "w400", "w800", "w1200"]
    assert text[spans[-1].start : spans[-1].end].split()[-1] == "w1999"


def test_static_windows_and_overlap() -> None:
    strategy = ChunkingStrategy.from_body(
        {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    )
    text = _words(250)
    pieces = [text[s.start : s.end] for s in chunk_text(text, strategy)]
    assert [count_tokens(p) for p in pieces] == [100, 100, 50]
    assert " ".join(pieces) == text


def test_short_and_empty_text() -> None:
    assert [s.tokens for s in chunk_text("Hello, world!", ChunkingStrategy())] == [4]
    assert list(chunk_text("   ", ChunkingStrategy())) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"type": "fixed"}, "must be 'auto' or 'static'"),
        ({"type": "static"}, "static is required"),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}},
            "between 100 and 4096, not 50",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101},
            },
            "half of max_chunk_size_tokens (100), not 101",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": "800", "chunk_overlap_tokens": 0},
            },
            "max_chunk_size_tokens must be an integer",
        ),
    ],
)
def test_bad_strategies_say_why(body: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=None) as e:
        ChunkingStrategy.from_body(body)
    assert says in str(e.value)
