"""One vector store's chunks, searchable: BM25 over an incremental inverted index, and dense
vectors fused with it by reciprocal rank fusion.

Files come and go one at a time: adding a file tokenizes its chunks (bm25s' token pattern and
English stopwords) and appends them to the postings, removing one marks its chunks dead (the
postings are compacted once half of them are dead); nothing is rebuilt at search time::

    index = SearchIndex()
    index.add(IndexedFile("file-1", "guide.md", {"lang": "en"}, chunks))
    hits = index.search("how do I reset it", limit=5, score_threshold=0.2,
                        filters={"type": "eq", "key": "lang", "value": "en"})

Scoring is BM25 as bm25s' Lucene variant computes it (k1 = 1.5, b = 0.75,
idf = ln(1 + (N - df + 0.5) / (df + 0.5))). Scores are in [0, 1): BM25 alone, a chunk's score
over the most any chunk could score for that query (the sum of the query terms' IDF), so
thresholds and results from several stores compare. With a query vector and chunk embeddings
the ranking is reciprocal rank fusion (k = 60) of the BM25 and the cosine rankings, and the
score is the fused value over the largest it can take, so a chunk first in both scores 1.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from assistant_kit.server.knowledge.filters import matches

RRF_K = 60
K1 = 1.5
B = 0.75
#: How many of the dense ranking's best take part in the fusion (at least ``limit`` of them).
DENSE_DEPTH = 100
_TERM = re.compile(r"(?u)\b\w\w+\b")


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_STOPWORDS = _stopwords()


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


def terms_of(text: str) -> list[str]:
    """BM25 terms: lower-cased words of two characters or more, without English stopwords."""
    return [t for t in _TERM.findall(text.lower()) if t not in _STOPWORDS]


@dataclass(slots=True)
class _Entry:
    file: IndexedFile
    slots: list[int]
    df: Counter[str]


class _Postings:
    """The chunks holding one term (slot numbers) and how often; arrays made on demand."""

    __slots__ = ("_arrays", "slots", "tfs")

    def __init__(self) -> None:
        self.slots: list[int] = []
        self.tfs: list[int] = []
        self._arrays: tuple[Any, Any] | None = None

    def append(self, slot: int, tf: int) -> None:
        self.slots.append(slot)
        self.tfs.append(tf)
        self._arrays = None

    def arrays(self) -> tuple[Any, Any]:
        if self._arrays is None:
            self._arrays = (
                np.asarray(self.slots, dtype=np.int64),
                np.asarray(self.tfs, dtype=np.float64),
            )
        return self._arrays


class SearchIndex:
    """The chunks of one vector store's completed files."""

    def __init__(self, files: Iterable[IndexedFile] = ()) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._df: Counter[str] = Counter()
        self._postings: dict[str, _Postings] = {}
        self._owner: list[_Entry | None] = []
        self._position: list[int] = []
        self._lengths: list[int] = []
        self._live_count = 0
        self._live_length = 0
        self._vectors: Any = None
        self._vectors_stale = True
        for f in files:
            self.add(f)

    def __len__(self) -> int:
        return self._live_count

    def __contains__(self, file_id: object) -> bool:
        return file_id in self._entries

    def add(self, file: IndexedFile) -> None:
        """Index a file (replacing an earlier version of it)."""
        counted = [Counter(terms_of(c.text)) for c in file.chunks]
        with self._lock:
            self._drop(file.file_id)
            entry = _Entry(file, [], Counter())
            for position, counts in enumerate(counted):
                slot = len(self._owner)
                self._owner.append(entry)
                self._position.append(position)
                length = sum(counts.values())
                self._lengths.append(length)
                self._live_length += length
                for term, tf in counts.items():
                    postings = self._postings.get(term)
                    if postings is None:
                        postings = self._postings[term] = _Postings()
                    postings.append(slot, tf)
                entry.df.update(counts.keys())
                entry.slots.append(slot)
            self._live_count += len(entry.slots)
            self._df.update(entry.df)
            self._entries[file.file_id] = entry
            self._vectors_stale = True

    def remove(self, file_id: str) -> bool:
        with self._lock:
            found = self._drop(file_id)
            if len(self._owner) > 64 and self._live_count < len(self._owner) // 2:
                self._compact()
            return found

    def set_attributes(self, file_id: str, attributes: Mapping[str, Any]) -> None:
        with self._lock:
            entry = self._entries.get(file_id)
            if entry is not None:
                entry.file = replace(entry.file, attributes=dict(attributes))

    def _drop(self, file_id: str) -> bool:
        entry = self._entries.pop(file_id, None)
        if entry is None:
            return False
        for slot in entry.slots:
            self._owner[slot] = None
            self._live_length -= self._lengths[slot]
        self._live_count -= len(entry.slots)
        self._df.subtract(entry.df)
        for term in entry.df:
            if self._df[term] <= 0:
                del self._df[term]
        self._vectors_stale = True
        return True

    def _compact(self) -> None:
        entries = list(self._entries.values())
        self._entries, self._df, self._postings = {}, Counter(), {}
        self._owner, self._position, self._lengths = [], [], []
        self._live_count = self._live_length = 0
        for entry in entries:
            self.add(entry.file)

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
            size = len(self._owner)
            if self._live_count == 0:
                return []
            eligible = self._eligible(filters)
            lexical = self._bm25(list(dict.fromkeys(terms_of(query))), size) * eligible
            if query_vector is not None and self._dense() is not None:
                cosine = self._cosine(query_vector)
                scores = _fused(lexical, cosine, eligible, limit)
            else:
                scores = lexical
            hits = []
            for i in _top(scores, limit):
                score = float(scores[i])
                if score <= 0 or score < score_threshold:
                    break
                entry = self._owner[i]
                assert entry is not None, "dead chunks are not eligible"
                chunk = entry.file.chunks[self._position[i]]
                hits.append(
                    Hit(
                        entry.file.file_id, entry.file.filename, score, chunk, entry.file.attributes
                    )
                )
            return hits

    def _bm25(self, terms: list[str], size: int) -> Any:
        scores = np.zeros(size, dtype=np.float64)
        n = self._live_count
        ceiling = 0.0
        lengths = np.asarray(self._lengths, dtype=np.float64)
        average = self._live_length / n if n else 1.0
        norm = K1 * (1 - B + B * lengths / (average or 1.0))
        for term in terms:
            df = self._df.get(term, 0)
            if df <= 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            ceiling += idf
            slots, tfs = self._postings[term].arrays()
            scores[slots] += idf * tfs / (tfs + norm[slots])
        return scores / ceiling if ceiling > 0 else scores

    def _eligible(self, filters: Mapping[str, Any] | None) -> Any:
        mask = np.zeros(len(self._owner), dtype=np.float64)
        for entry in self._entries.values():
            if not filters or matches(filters, entry.file.attributes):
                mask[entry.slots] = 1.0
        return mask

    def _dense(self) -> Any:
        if self._vectors_stale:
            self._vectors_stale = False
            self._vectors = None
            vectors = []
            for slot, entry in enumerate(self._owner):
                embedding = None
                if entry is not None:
                    embedding = entry.file.chunks[self._position[slot]].embedding
                    if embedding is None:
                        return None
                vectors.append(embedding)
            width = next((len(v) for v in vectors if v is not None), 0)
            if width:
                matrix = np.asarray(
                    [v if v is not None else [0.0] * width for v in vectors], dtype=np.float32
                )
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                self._vectors = matrix / np.where(norms == 0, 1, norms)
        return self._vectors

    def _cosine(self, query_vector: Sequence[float]) -> Any:
        q = np.asarray(query_vector, dtype=np.float32)
        if q.shape[0] != self._vectors.shape[1]:
            raise ValueError(
                f"the query embedding has {q.shape[0]} dimensions, the chunks "
                f"{self._vectors.shape[1]}: was the embeddings model changed?"
            )
        norm = float(np.linalg.norm(q)) or 1.0
        return (self._vectors @ (q / norm)).astype(np.float64)


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
