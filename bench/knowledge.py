"""Vector store ingestion and search: throughput, latency and retrieval quality.

* ingestion: markdown and PDF documents through parse + chunk (auto: 800/400 tokens), MB/s of
  input (the PDFs are written by ``tests/server/knowledge/documents_fixtures.py``);
* search: p50/p99 latency of one BM25 query (10 results) over 10k and 100k chunks of 200 words
  of synthetic text with a Zipf vocabulary (``--sizes``), and the time to index them;
* quality: recall@5 and MRR of BM25 on the labelled questions of ``bench/knowledge_qa.yaml``
  over the public-domain corpus ``examples/knowledge/us-constitution/`` (each question names
  the file that answers it).

    python bench/knowledge.py                     # every figure
    python bench/knowledge.py --sizes 10000       # smaller search index
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server" / "knowledge"))

from documents_fixtures import pdf_bytes  # noqa: E402

from assistant_kit.server.knowledge.chunking import ChunkingStrategy  # noqa: E402
from assistant_kit.server.knowledge.index import Chunk, IndexedFile, SearchIndex  # noqa: E402
from assistant_kit.server.knowledge.ingest import chunks_of  # noqa: E402

CORPUS = ROOT / "examples" / "knowledge" / "us-constitution"
QUESTIONS = ROOT / "bench" / "knowledge_qa.yaml"


def _vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


def _text(rng: random.Random, words: list[str], weights: list[float], n: int) -> str:
    return " ".join(rng.choices(words, weights, k=n))


def ingestion(megabytes: float) -> None:
    rng = random.Random(1)
    words = _vocabulary(rng)
    weights = [1 / (i + 1) for i in range(len(words))]
    doc_words = 20_000
    docs = []
    size = 0
    while size < megabytes * 1e6:
        body = "\n\n".join(
            f"## Section {s}\n\n" + _text(rng, words, weights, doc_words // 10) for s in range(10)
        )
        data = body.encode()
        docs.append(data)
        size += len(data)
    strategy = ChunkingStrategy()

    async def run(kind: str, files: list[bytes], name: str) -> None:
        started = time.perf_counter()
        chunks = 0
        for data in files:
            chunks += len(await chunks_of(name, data, strategy))
        elapsed = time.perf_counter() - started
        total = sum(len(d) for d in files) / 1e6
        print(f"{kind}: {total:.1f} MB, {chunks} chunks in {elapsed:.2f}s")
        print(f"FIGURE ingest_{kind}_mb_s={total / elapsed:.2f} unit=MB/s")

    asyncio.run(run("markdown", docs, "doc.md"))
    pdfs = []
    for data in docs[: max(1, len(docs) // 4)]:
        text = data.decode()
        lines = [text[i : i + 90] for i in range(0, len(text), 90)]
        pdfs.append(pdf_bytes(*(" ".join(lines[p : p + 40]) for p in range(0, len(lines), 40))))
    asyncio.run(run("pdf", pdfs, "doc.pdf"))


def search_latency(sizes: list[int], queries: int) -> None:
    rng = random.Random(2)
    words = _vocabulary(rng)
    weights = [1 / (i + 1) for i in range(len(words))]
    for size in sizes:
        files = []
        per_file = 100
        for f in range(size // per_file):
            chunks = [Chunk(c, _text(rng, words, weights, 200), 200) for c in range(per_file)]
            files.append(IndexedFile(f"file-{f}", f"f{f}.md", {"n": f % 10}, chunks))
        started = time.perf_counter()
        index = SearchIndex(files)
        build = time.perf_counter() - started
        index.search("warm up")
        timings = []
        for _ in range(queries):
            query = _text(rng, words, weights, 6)
            t0 = time.perf_counter()
            index.search(query, limit=10)
            timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        p50 = statistics.median(timings)
        p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        label = f"{size // 1000}k"
        print(f"{size} chunks: index built in {build:.2f}s")
        print(f"FIGURE search_{label}_build_s={build:.2f} unit=s")
        print(f"FIGURE search_{label}_p50_ms={p50:.1f} goal=max:200 unit=ms")
        print(f"FIGURE search_{label}_p99_ms={p99:.1f} unit=ms")


def quality() -> None:
    questions = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    strategy = ChunkingStrategy("static", 200, 50)

    async def build() -> SearchIndex:
        files = []
        for path in sorted(CORPUS.glob("*.md")):
            chunks = await chunks_of(path.name, path.read_bytes(), strategy)
            files.append(IndexedFile(path.name, path.name, {}, chunks))
        return SearchIndex(files)

    index = asyncio.run(build())
    hits_at_5 = 0
    reciprocal = 0.0
    for q in questions:
        ranked = [h.file_id for h in index.search(q["question"], limit=20)]
        files = list(dict.fromkeys(ranked))
        if q["file"] in files[:5]:
            hits_at_5 += 1
        if q["file"] in files:
            reciprocal += 1 / (files.index(q["file"]) + 1)
    n = len(questions)
    print(f"{n} questions over {len(list(CORPUS.glob('*.md')))} files")
    print(f"FIGURE bm25_recall_at_5={hits_at_5 / n:.3f} goal=min:0.8 unit=fraction")
    print(f"FIGURE bm25_mrr={reciprocal / n:.3f} unit=")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--megabytes", type=float, default=5.0)
    args = parser.parse_args()
    ingestion(args.megabytes)
    search_latency([int(s) for s in args.sizes.split(",")], args.queries)
    if CORPUS.is_dir() and QUESTIONS.is_file():
        quality()


if __name__ == "__main__":
    main()
