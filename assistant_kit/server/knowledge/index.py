"""One vector store's chunks, searchable: BM25 (``bm25s``), and dense vectors fused by RRF.

Files come and go one at a time; each file's chunks are tokenized once, when it is added, and
the BM25 matrix is rebuilt from those tokens at the first search after a change::

    index = SearchIndex()
    index.add(IndexedFile("file-1", "guide.md", {"lang": "en"}, chunks))
    hits = index.search("how do I reset it", limit=5, score_threshold=0.2,
                        filters={"type": "eq", "key": "lang", "value": "en"})

Scores are in [0, 1). BM25 alone: a chunk's BM25 score over the most any chunk could score for
that query (the sum of the query terms' IDF under bm25s' Lucene variant), so thresholds and
results from several stores compare. With a query vector and chunk embeddings the ranking is
reciprocal rank fusion (k = 60) of the BM25 and the cosine rankings, and the score is the fused
value over the largest it can take (first in both), so a chunk first in both scores 1.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from assistant_kit.server.knowledge.filters import matches

RRF_K = 60
#: How many of the dense ranking's best take part in the fusion (at least ``limit`` of them).
DENSE_DEPTH = 100


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a file: its text and, when an embeddings endpoint is configured, its vector."""

    position: int
    text: str
    tokens: int
    embedding: Sequence[float] | None = None


@dataclass(frozen=True, slots=True)
class IndexedFile:
    file_id: str
    filename: str
    attributes: Mapping[str, Any]
    chunks: Sequence[Chunk]


@dataclass(frozen=True, slots=True)
class Hit:
    file_id: str
    filename: str
    score: float
    chunk: Chunk
    attributes: Mapping[str, Any] = field(default_factory=dict)


def tokenize(texts: list[str]) -> list[list[str]]:
    """BM25 terms: lower-cased words without English stopwords."""
    import bm25s

    if not texts:
        return []
    tokens: list[list[str]] = bm25s.tokenize(
        texts, stopwords="en", return_ids=False, show_progress=False
    )
    return tokens


@dataclass(slots=True)
class _Entry:
    file: IndexedFile
    terms: list[list[str]]
    df: Counter[str]


class SearchIndex:
    """The chunks of one vector store's completed files."""

    def __init__(self, files: Iterable[IndexedFile] = ()) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._df: Counter[str] = Counter()
        self._built: _Built | None = None
        for f in files:
            self.add(f)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(e.file.chunks) for e in self._entries.values())

    def __contains__(self, file_id: object) -> bool:
        return file_id in self._entries

    def add(self, file: IndexedFile) -> None:
        """Index a file (replacing an earlier version of it)."""
        terms = tokenize([c.text for c in file.chunks])
        df: Counter[str] = Counter()
        for chunk_terms in terms:
            df.update(set(chunk_terms))
        with self._lock:
            self._drop(file.file_id)
            self._entries[file.file_id] = _Entry(file, terms, df)
            self._df.update(df)
            self._built = None

    def remove(self, file_id: str) -> bool:
        with self._lock:
            found = self._drop(file_id)
            self._built = None if found else self._built
            return found

    def set_attributes(self, file_id: str, attributes: Mapping[str, Any]) -> None:
        with self._lock:
            entry = self._entries.get(file_id)
            if entry is not None:
                entry.file = replace(entry.file, attributes=dict(attributes))
                self._built = None

    def _drop(self, file_id: str) -> bool:
        entry = self._entries.pop(file_id, None)
        if entry is None:
            return False
        self._df.subtract(entry.df)
        for term in entry.df:
            if self._df[term] <= 0:
                del self._df[term]
        return True

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        score_threshold: float = 0.0,
        filters: Mapping[str, Any] | None = None,
        query_vector: Sequence[float] | None = None,
    ) -> list[Hit]:
        """The best ``limit`` chunks for ``query`` among files passing ``filters``, best first,
        none scoring below ``score_threshold``."""
        with self._lock:
            built = self._built or self._build()
            query_terms = list(dict.fromkeys(tokenize([query])[0])) if query.strip() else []
            ceiling = sum(_idf(built.size, self._df[t]) for t in query_terms if t in self._df)
        if built.size == 0:
            return []
        eligible = built.eligible(filters)
        lexical = np.zeros(built.size, dtype=np.float64)
        if ceiling > 0:
            lexical = built.retriever.get_scores(query_terms).astype(np.float64) / ceiling
        lexical *= eligible
        if query_vector is not None and built.vectors is not None:
            scores = _fused(lexical, built.cosine(query_vector), eligible, limit)
        else:
            scores = lexical
        order = _top(scores, limit)
        hits = []
        for i in order:
            score = float(scores[i])
            if score <= 0 or score < score_threshold:
                break
            entry = built.owners[i]
            chunk = entry.file.chunks[built.positions[i]]
            hits.append(
                Hit(entry.file.file_id, entry.file.filename, score, chunk, entry.file.attributes)
            )
        return hits

    def _build(self) -> _Built:
        self._built = _Built(list(self._entries.values()))
        return self._built


class _Built:
    """The matrices of one state of the index (rebuilt after any change)."""

    def __init__(self, entries: list[_Entry]) -> None:
        import bm25s

        self.owners: list[_Entry] = []
        self.positions: list[int] = []
        corpus: list[list[str]] = []
        for entry in entries:
            for position, terms in enumerate(entry.terms):
                self.owners.append(entry)
                self.positions.append(position)
                corpus.append(terms)
        self.size = len(corpus)
        self.retriever: Any = bm25s.BM25()
        if corpus:
            self.retriever.index(corpus, show_progress=False)
        self.vectors: Any = None
        chunks = [o.file.chunks[p] for o, p in zip(self.owners, self.positions, strict=True)]
        if chunks and all(c.embedding is not None for c in chunks):
            matrix = np.asarray([c.embedding for c in chunks], dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            self.vectors = matrix / np.where(norms == 0, 1, norms)

    def eligible(self, filters: Mapping[str, Any] | None) -> Any:
        if not filters:
            return np.ones(self.size, dtype=np.float64)
        verdicts: dict[str, bool] = {}
        mask = np.zeros(self.size, dtype=np.float64)
        for i, owner in enumerate(self.owners):
            file_id = owner.file.file_id
            if file_id not in verdicts:
                verdicts[file_id] = matches(filters, owner.file.attributes)
            mask[i] = verdicts[file_id]
        return mask

    def cosine(self, query_vector: Sequence[float]) -> Any:
        q = np.asarray(query_vector, dtype=np.float32)
        if q.shape[0] != self.vectors.shape[1]:
            raise ValueError(
                f"the query embedding has {q.shape[0]} dimensions, the chunks "
                f"{self.vectors.shape[1]}: was the embeddings model changed?"
            )
        norm = float(np.linalg.norm(q)) or 1.0
        return (self.vectors @ (q / norm)).astype(np.float64)


def _idf(n: int, df: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _top(scores: Any, limit: int) -> Any:
    if limit >= scores.shape[0]:
        candidates = np.arange(scores.shape[0])
    else:
        candidates = np.argpartition(-scores, limit)[:limit]
    return candidates[np.argsort(-scores[candidates], kind="stable")]


def _fused(lexical: Any, cosine: Any, eligible: Any, limit: int) -> Any:
    """Reciprocal rank fusion of the BM25 ranking (chunks scoring above 0) and the best
    ``DENSE_DEPTH`` of the cosine ranking, over eligible chunks, scaled to 1 at the best."""
    fused = np.zeros(lexical.shape[0], dtype=np.float64)
    lexical_order = _top(lexical, int(np.count_nonzero(lexical)))
    fused[lexical_order] += 1.0 / (RRF_K + 1 + np.arange(lexical_order.shape[0]))
    dense = np.where(eligible > 0, cosine, -np.inf)
    depth = min(max(DENSE_DEPTH, limit), int(np.count_nonzero(eligible)))
    dense_order = _top(dense, depth)
    fused[dense_order] += 1.0 / (RRF_K + 1 + np.arange(dense_order.shape[0]))
    return fused / (2.0 / (RRF_K + 1))
