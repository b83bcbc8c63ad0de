"""Search over one store's chunks: ranking, normalised scores, thresholds, filters, incremental
add/remove/re-attribute, and rank fusion with embeddings."""

from __future__ import annotations

from assistant_kit.server.knowledge.index import Chunk, IndexedFile, SearchIndex

DOCS = {
    "file-kettle": "The kettle boils water in two minutes. Descale the kettle every month.",
    "file-toaster": "The toaster browns bread. Clean the crumb tray of the toaster weekly.",
    "file-fridge": "The fridge keeps food cold. Set the fridge to four degrees.",
}


def _file(file_id: str, text: str, **attributes: object) -> IndexedFile:
    chunks = [Chunk(i, part.strip() + ".", 10) for i, part in enumerate(text.split(".")[:-1])]
    return IndexedFile(file_id, file_id.removeprefix("file-") + ".md", attributes, chunks)


def _index() -> SearchIndex:
    return SearchIndex(
        _file(fid, text, kind="kitchen", year=2020 + i)
        for i, (fid, text) in enumerate(DOCS.items())
    )


def test_best_chunk_first_with_scores_below_one() -> None:
    hits = _index().search("how often should I descale the kettle", limit=3)
    assert hits[0].file_id == "file-kettle"
    assert hits[0].chunk.text == "Descale the kettle every month."
    assert hits[0].filename == "kettle.md"
    assert all(0 < h.score < 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_no_match_and_empty_index() -> None:
    assert _index().search("submarine periscope") == []
    assert SearchIndex().search("kettle") == []
    assert _index().search("   ") == []


def test_limit_and_threshold() -> None:
    index = _index()
    assert len(index.search("the kettle toaster fridge", limit=2)) == 2
    everything = index.search("descale kettle", limit=10)
    strong = index.search("descale kettle", limit=10, score_threshold=everything[0].score)
    assert [h.chunk.text for h in strong] == [everything[0].chunk.text]


def test_filters_restrict_files() -> None:
    hits = _index().search(
        "clean the kettle or the toaster",
        limit=10,
        filters={"type": "gte", "key": "year", "value": 2021},
    )
    assert {h.file_id for h in hits} == {"file-toaster"}


def test_incremental_add_remove_and_attributes() -> None:
    index = _index()
    assert len(index) == 6
    index.add(_file("file-oven", "The oven bakes bread at two hundred degrees."))
    assert index.search("bake bread oven")[0].file_id == "file-oven"
    index.add(_file("file-oven", "The oven roasts vegetables."))  # a new version replaces it
    assert len(index) == 7
    assert index.search("bakes")[:1] == []
    assert index.remove("file-oven") and not index.remove("file-oven")
    assert "file-oven" not in index
    assert index.search("roasts vegetables") == []
    index.set_attributes("file-kettle", {"kind": "archived"})
    only = {"type": "eq", "key": "kind", "value": "archived"}
    assert {h.file_id for h in index.search("the", limit=10, filters=only)} <= {"file-kettle"}
    assert index.search("kettle", filters=only)[0].attributes == {"kind": "archived"}


def test_dense_vectors_fuse_with_bm25() -> None:
    # "frosty" shares no word with the fridge text; only its vector says it is about the fridge
    vectors = {
        "file-kettle": [1.0, 0.0, 0.0],
        "file-toaster": [0.0, 1.0, 0.0],
        "file-fridge": [0.0, 0.0, 1.0],
    }
    files = []
    for fid, text in DOCS.items():
        plain = _file(fid, text)
        chunks = [
            Chunk(c.position, c.text, c.tokens, vectors[fid] if c.position else [0.5, 0.5, 0.5])
            for c in plain.chunks
        ]
        files.append(IndexedFile(fid, plain.filename, {}, chunks))
    index = SearchIndex(files)
    assert index.search("frosty") == []
    fused = index.search("frosty", query_vector=[0.1, 0.0, 0.9], limit=1)
    assert fused[0].chunk.text == "Set the fridge to four degrees."
    assert 0 < fused[0].score < 1
    # a chunk first in both rankings scores 1
    both = index.search("descale kettle", query_vector=[1.0, 0.0, 0.0], limit=1)
    assert both[0].chunk.text == "Descale the kettle every month."
    assert both[0].score == 1.0
