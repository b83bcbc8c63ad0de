"""One file's bytes to indexed chunks: parse, cut, and embed when an endpoint is configured::

    chunks = await chunks_of("guide.pdf", data, ChunkingStrategy(), embedder=None)

Parsing and cutting run in a worker thread (a PDF can take a while); ``DocumentError`` and
``EmbeddingError`` say why a file cannot be indexed.
"""

from __future__ import annotations

import anyio.to_thread

from assistant_kit.server.knowledge.chunking import ChunkingStrategy, chunk_text
from assistant_kit.server.knowledge.documents import extract_text
from assistant_kit.server.knowledge.embeddings import Embedder
from assistant_kit.server.knowledge.index import Chunk


def _cut(filename: str, data: bytes, strategy: ChunkingStrategy) -> list[Chunk]:
    text = extract_text(filename, data)
    return [
        Chunk(i, text[span.start : span.end], span.tokens)
        for i, span in enumerate(chunk_text(text, strategy))
    ]


async def chunks_of(
    filename: str, data: bytes, strategy: ChunkingStrategy, embedder: Embedder | None = None
) -> list[Chunk]:
    chunks = await anyio.to_thread.run_sync(_cut, filename, data, strategy)
    if embedder is None or not chunks:
        return chunks
    vectors = await embedder.embed([c.text for c in chunks])
    return [Chunk(c.position, c.text, c.tokens, v) for c, v in zip(chunks, vectors, strict=True)]
