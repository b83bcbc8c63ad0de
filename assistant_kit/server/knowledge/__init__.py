"""Knowledge: the documents behind vector stores and ``file_search``.

``documents`` turns a file into text (or a ``DocumentError`` that becomes its ``last_error``),
``chunking`` cuts it into token windows (OpenAI's auto: 800 tokens, 400 overlapping),
``embeddings`` asks an optional OpenAI-compatible endpoint for vectors, ``ingest`` does all three
for one file, ``index`` searches one vector store's chunks (BM25, fused with the vectors by
reciprocal rank fusion when there are any) and ``filters`` matches file attributes.
Nothing here knows a wire dialect or the store.
"""
