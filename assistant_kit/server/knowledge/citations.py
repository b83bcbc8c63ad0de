"""Citation markers: how ``file_search`` results are named to the model and found in its reply.

Each result the model reads carries a marker ``【{search}:{result}†{filename}】`` (the run's
``search``-th file_search call, its ``result``-th hit), the form OpenAI's models write. When the
reply completes, every marker it copied becomes a ``file_citation`` annotation over the marker
text, pointing at that result's file; a marker whose numbers do not match falls back to the
first result of that file name in the run::

    annotate("Monthly 【0:0†kettle.md】.", [[{"file_id": uid, "filename": "kettle.md", ...}]])
    # [{"type": "file_citation", "text": "【0:0†kettle.md】", "start_index": 8, "end_index": 23,
    #   "file_citation": {"file_id": "file-<uid>"}}]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from assistant_kit.server.ids import file_ref

MARKER = re.compile(r"【(?:(\d+):)?(\d+)†([^】]*)】")


def marker(search: int, result: int, filename: str) -> str:
    return f"【{search}:{result}†{filename}】"


def annotate(text: str, searches: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The ``file_citation`` annotations of the markers in ``text``, given the run's searches
    (each a list of results with a neutral ``file_id`` and a ``filename``), in order."""
    annotations: list[dict[str, Any]] = []
    for m in MARKER.finditer(text):
        name = m.group(3)
        search = int(m.group(1)) if m.group(1) is not None else len(searches) - 1
        index = int(m.group(2))
        found: Mapping[str, Any] | None = None
        if 0 <= search < len(searches) and index < len(searches[search]):
            candidate = searches[search][index]
            if not name or candidate.get("filename") == name:
                found = candidate
        if found is None:
            found = next((r for s in searches for r in s if r.get("filename") == name), None)
        if found is None:
            continue
        annotations.append(
            {
                "type": "file_citation",
                "text": m.group(0),
                "start_index": m.start(),
                "end_index": m.end(),
                "file_citation": {"file_id": file_ref(str(found["file_id"]))},
            }
        )
    return annotations
