"""Vector store ingestion and search: throughput, latency and retrieval quality.

* ingestion: markdown and PDF documents through parse + chunk (auto: 800/400 tokens), MB/s of
  input (the PDFs are written by ``tests/server/knowledge/documents_fixtures.py``);
* search: p50/p99 latency of one BM25 query (10 results) over 10k and 100k chunks of 200 words
  of synthetic text with a Zipf vocabulary (``--sizes``), and the time to index them;
* file_search in a run: p50 of one run (create and poll, scripted model, ``kit serve`` on
  loopback) that calls file_search over a store of ``--run-chunks`` chunks, minus the p50 of
  a run that answers without a tool (the step's added latency);
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
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

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


RUN_SCRIPT = """\
default: "A plain answer."
rules:
  - user: "(?i)search"
    tool_calls:
      - {name: file_search, arguments: {query: "descale the kettle"}}
  - after_tool: file_search
    reply: "Found it 【0:0†doc0.md】."
"""


def run_latency(chunks: int, runs: int) -> None:
    import tempfile
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the Assistants API

    from kit_server import running_kit_server
    from openai import OpenAI

    rng = random.Random(3)
    words = _vocabulary(rng)
    weights = [1 / (i + 1) for i in range(len(words))]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "model.yaml").write_text(RUN_SCRIPT, encoding="utf-8")
        (folder / "kit.yaml").write_text(
            "server:\n  models:\n    default: {backend: scripted, script: model.yaml}\n",
            encoding="utf-8",
        )
        with running_kit_server(output_dir=folder) as server:
            client = OpenAI(base_url=server.openai_url, api_key=server.api_key, max_retries=0)
            per_file = 20
            ids = []
            for f in range(max(1, chunks // per_file)):
                text = "\n\n".join(_text(rng, words, weights, 150) for _ in range(per_file))
                data = ("Descale the kettle monthly. " + text).encode()
                ids.append(client.files.create(file=(f"doc{f}.md", data), purpose="assistants").id)
            static = {
                "type": "static",
                "static": {"max_chunk_size_tokens": 160, "chunk_overlap_tokens": 0},
            }
            vs = client.vector_stores.create(file_ids=ids, chunking_strategy=static)  # type: ignore[arg-type]
            while client.vector_stores.retrieve(vs.id).status == "in_progress":
                time.sleep(0.2)
            assistant = client.beta.assistants.create(
                model="scripted",
                tools=[{"type": "file_search"}],
                tool_resources={"file_search": {"vector_store_ids": [vs.id]}},
            )

            def timed(text: str) -> float:
                thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
                started = time.perf_counter()
                run = client.beta.threads.runs.create_and_poll(
                    thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=5
                )
                assert run.status == "completed", run.last_error
                return (time.perf_counter() - started) * 1000

            timed("search")  # warm the index
            plain = statistics.median(timed("hello") for _ in range(runs))
            searching = statistics.median(timed("search please") for _ in range(runs))
    print(
        f"runs over {chunks} chunks: plain p50 {plain:.1f} ms, with file_search {searching:.1f} ms"
    )
    print(f"FIGURE file_search_step_added_ms={searching - plain:.1f} unit=ms (p50)")


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
    parser.add_argument("--run-chunks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", default="ingest,search,run,quality")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if "ingest" in only:
        ingestion(args.megabytes)
    if "search" in only:
        search_latency([int(s) for s in args.sizes.split(",")], args.queries)
    if "run" in only:
        run_latency(args.run_chunks, args.runs)
    if "quality" in only and CORPUS.is_dir() and QUESTIONS.is_file():
        quality()


if __name__ == "__main__":
    main()
