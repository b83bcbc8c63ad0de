"""The ``quark_search`` built-in tool (older name: ``search``), with two backends.

* ``corpus``: an offline folder of documents (``.md``, ``.markdown``, ``.txt``, ``.rst``) named in
  kit.yaml, cut into passages and indexed with BM25 (``bm25s``) when the tool is built.
* ``http``: a SearXNG-style JSON API, ``GET {url}?q=...&format=json``, whose ``results`` carry
  ``title``, ``url`` and ``content``.

Either way the model sees a JSON string ``{"query", "results": [{"title", "snippet", "source"}]}``,
and the step has DashScope's shape ``quark_search: {arguments, output}``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from assistant_kit.catalog import aliases_of
from assistant_kit.errors import ConfigError, ToolError
from assistant_kit.server.tools.base import BuiltinTool, ToolContext, ToolOutput
from assistant_kit.server.tools.guard import guarded, string_argument, to_json

_DESCRIPTION = "Search the web (or the configured knowledge base) and return matching snippets."
BACKENDS = ("corpus", "http")
SUFFIXES = (".md", ".markdown", ".txt", ".rst")
_PASSAGE_CHARS = 1200
_SNIPPET_CHARS = 300


@dataclass(frozen=True, slots=True)
class Passage:
    """A searchable piece of one corpus document."""

    title: str
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    title: str
    snippet: str
    source: str
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        hit: dict[str, Any] = {"title": self.title, "snippet": self.snippet, "source": self.source}
        if self.score is not None:
            hit["score"] = round(self.score, 4)
        return hit


def load_passages(folder: Path) -> list[Passage]:
    """Every document under ``folder`` cut into passages of about 1,200 characters."""
    passages: list[Passage] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        title = _title(text, path)
        source = path.relative_to(folder).as_posix()
        chunk: list[str] = []
        size = 0
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = paragraph.strip()
            if not paragraph or (paragraph.startswith("#") and _title(paragraph, path) == title):
                continue  # empty, or the heading already shown as the title
            if chunk and size + len(paragraph) > _PASSAGE_CHARS:
                passages.append(Passage(title, "\n\n".join(chunk), source))
                chunk, size = [], 0
            chunk.append(paragraph)
            size += len(paragraph)
        if chunk:
            passages.append(Passage(title, "\n\n".join(chunk), source))
    return passages


def _title(text: str, path: Path) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            return line.lstrip("#").strip() or path.stem
        if line:
            break
    return path.stem.replace("-", " ").replace("_", " ")


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1] + "…"


class CorpusIndex:
    """A BM25 index over a folder's passages."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        import bm25s

        self.passages = list(passages)
        self._retriever: Any = None
        if self.passages:
            texts = [f"{p.title}\n{p.text}" for p in self.passages]
            tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
            self._retriever = bm25s.BM25()
            self._retriever.index(tokens, show_progress=False)

    @classmethod
    def from_folder(cls, folder: Path) -> CorpusIndex:
        if not folder.is_dir():
            raise ConfigError(f"quark_search: corpus folder {folder} does not exist")
        return cls(load_passages(folder))

    def search(self, query: str, limit: int) -> list[SearchHit]:
        import bm25s

        if self._retriever is None:
            return []
        tokens = bm25s.tokenize(query, stopwords="en", return_ids=False, show_progress=False)
        if not tokens or not tokens[0]:
            return []
        k = min(limit, len(self.passages))
        ids, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
        hits = []
        for index, score in zip(ids[0], scores[0], strict=True):
            if score <= 0:
                continue
            passage = self.passages[int(index)]
            snippet = _snippet(passage.text)
            hits.append(SearchHit(passage.title, snippet, passage.source, float(score)))
        return hits


class QuarkSearchTool(BuiltinTool):
    """Searches with the configured backend.

    Options (kit.yaml ``server.tools.quark_search``): ``backend`` (corpus | http); ``path`` for
    corpus (relative to kit.yaml's folder); ``url``, ``params`` (extra query parameters) and
    ``api_key_env`` (sent as a bearer token) for http; ``max_results`` (5), ``timeout_s`` (15).
    """

    type = "quark_search"
    aliases = aliases_of("quark_search")

    def __init__(
        self,
        backend: str = "corpus",
        *,
        path: str | Path | None = None,
        url: str | None = None,
        params: Mapping[str, Any] | None = None,
        api_key_env: str | None = None,
        max_results: int = 5,
        timeout_s: float = 15.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"quark_search: unknown backend {backend!r} (use {BACKENDS})")
        self.backend = backend
        self.max_results = max_results
        self.timeout_s = timeout_s
        self.index: CorpusIndex | None = None
        if backend == "corpus":
            if path is None:
                raise ConfigError("quark_search: the corpus backend needs `path`")
            self.index = CorpusIndex.from_folder(Path(path))
        elif not url:
            raise ConfigError("quark_search: the http backend needs `url`")
        self.url = url or ""
        self.params = dict(params or {})
        self.api_key_env = api_key_env
        self._http = http
        self._own_http: httpx.AsyncClient | None = None

    def definition(self) -> Mapping[str, Any]:
        return {
            "name": "quark_search",
            "description": _DESCRIPTION,
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "What to search for"}},
                "required": ["query"],
            },
        }

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        return await guarded(self.type, self._search(arguments), timeout_s=self.timeout_s)

    async def aclose(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    async def _search(self, arguments: Mapping[str, Any]) -> ToolOutput:
        query = string_argument(arguments, "query", "q", "keyword")
        if self.index is not None:
            hits = self.index.search(query, self.max_results)
        else:
            hits = await self._http_search(query)
        results = [hit.as_dict() for hit in hits]
        return ToolOutput(output=to_json({"query": query, "results": results}))

    async def _http_search(self, query: str) -> list[SearchHit]:
        if self._http is None and self._own_http is None:
            self._own_http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s))
        http = self._http or self._own_http
        assert http is not None
        headers = {}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env, "")
            if not key:
                raise ToolError(f"no API key: set the {self.api_key_env} environment variable")
            headers["Authorization"] = f"Bearer {key}"
        params = {**self.params, "q": query, "format": "json"}
        response = await http.get(self.url, params=params, headers=headers, follow_redirects=False)
        if response.status_code >= 300:
            raise ToolError(f"search API answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise ToolError("search API answered with something other than JSON") from exc
        items = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise ToolError("search API answer has no `results` list")
        hits = []
        for item in items[: self.max_results]:
            if not isinstance(item, dict):
                continue
            hits.append(
                SearchHit(
                    title=str(item.get("title") or ""),
                    snippet=_snippet(str(item.get("content") or item.get("snippet") or "")),
                    source=str(item.get("url") or item.get("source") or ""),
                    score=item.get("score") if isinstance(item.get("score"), float) else None,
                )
            )
        return hits
