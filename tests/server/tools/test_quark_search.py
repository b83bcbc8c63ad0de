"""quark_search: a BM25 corpus from a folder, and a SearXNG-style JSON API on loopback."""

from __future__ import annotations

import json

import pytest

from assistant_kit.errors import ConfigError
from assistant_kit.server.tools.quark_search import QuarkSearchTool, load_passages

pytestmark = pytest.mark.anyio


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "artists").mkdir(parents=True)
    (folder / "artists" / "van-gogh.md").write_text(
        "# Vincent van Gogh\n\nDutch painter. He painted The Starry Night in 1889 at Saint-Remy.\n"
    )
    (folder / "monet.md").write_text("# Claude Monet\n\nMonet painted the Water Lilies series.\n")
    (folder / "watercolor_basics.txt").write_text(
        "Watercolor uses transparent washes.\n\nWet-on-wet blends colours softly.\n"
    )
    (folder / "ignored.bin").write_bytes(b"\x00\x01 starry night")
    return folder


async def test_corpus_search_returns_titles_snippets_and_sources(corpus, context):
    tool = QuarkSearchTool("corpus", path=corpus, max_results=2)
    result = await tool.call({"query": "Who painted the Starry Night?"}, context)
    answer = json.loads(result.output)
    assert answer["query"] == "Who painted the Starry Night?"
    first = answer["results"][0]
    assert first["title"] == "Vincent van Gogh"
    assert first["source"] == "artists/van-gogh.md"
    assert first["snippet"] == "Dutch painter. He painted The Starry Night in 1889 at Saint-Remy."
    assert first["score"] > 0
    assert len(answer["results"]) <= 2


async def test_corpus_search_without_matches_returns_no_results(corpus, context):
    tool = QuarkSearchTool("corpus", path=corpus)
    result = await tool.call({"query": "quantum chromodynamics"}, context)
    assert json.loads(result.output) == {"query": "quantum chromodynamics", "results": []}


def test_documents_without_a_heading_take_their_file_name_as_title(corpus):
    titles = {p.source: p.title for p in load_passages(corpus)}
    assert titles == {
        "artists/van-gogh.md": "Vincent van Gogh",
        "monet.md": "Claude Monet",
        "watercolor_basics.txt": "watercolor basics",
    }


def test_long_documents_are_cut_into_passages(tmp_path):
    paragraphs = [f"Paragraph {n} " + "word " * 100 for n in range(10)]
    (tmp_path / "long.md").write_text("\n\n".join(paragraphs))
    passages = load_passages(tmp_path)
    assert len(passages) > 1
    assert all(len(p.text) <= 1300 for p in passages)


def test_a_missing_corpus_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"corpus folder .* does not exist"):
        QuarkSearchTool("corpus", path=tmp_path / "nope")


def searxng(seen):
    if seen.path != "/search" or seen.query.get("format") != ["json"]:
        return 400, {}, {"error": "bad request"}
    query = seen.query["q"][0]
    results = [
        {"title": f"{query} - Wikipedia", "url": "https://en.wikipedia.org/x", "content": "A page"},
        {"title": "Second", "url": "https://example.org/2", "content": "More " * 200},
    ]
    return 200, {}, {"query": query, "results": results}


async def test_http_backend_queries_a_searxng_style_api(loopback, context):
    server = loopback(searxng)
    tool = QuarkSearchTool("http", url=f"{server.url}/search", params={"language": "en"})
    result = await tool.call({"query": "starry night"}, context)
    await tool.aclose()
    answer = json.loads(result.output)
    assert answer["results"][0] == {
        "title": "starry night - Wikipedia",
        "snippet": "A page",
        "source": "https://en.wikipedia.org/x",
    }
    assert len(answer["results"][1]["snippet"]) == 300
    assert server.seen[0].query == {"language": ["en"], "q": ["starry night"], "format": ["json"]}


async def test_http_backend_failure_is_an_error_output(loopback, context):
    server = loopback(lambda seen: (502, {}, "bad gateway"))
    tool = QuarkSearchTool("http", url=f"{server.url}/search")
    result = await tool.call({"query": "x"}, context)
    await tool.aclose()
    assert result.is_error
    assert result.output == "quark_search failed: search API answered HTTP 502"


async def test_a_connection_failure_is_an_error_output(context):
    tool = QuarkSearchTool("http", url="http://127.0.0.1:9/search", timeout_s=5)
    result = await tool.call({"query": "x"}, context)
    await tool.aclose()
    assert result.is_error
    assert result.output.startswith("quark_search failed: ConnectError")


def test_the_tool_answers_to_its_old_name(corpus):
    tool = QuarkSearchTool("corpus", path=corpus)
    assert tool.aliases == ("search",)
