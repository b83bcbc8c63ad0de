"""The ``file_search`` built-in tool: searches the vector stores of the run's assistant and thread.

The model calls ``file_search(query)``; the tool searches every vector store named in
``tool_resources.file_search.vector_store_ids`` of the assistant and of the thread, with the
run's tool entry options (``file_search.max_num_results``, default 20, and
``ranking_options.score_threshold``). The model reads each hit with its citation marker
(``knowledge/citations.py``); the step keeps the hits (``ToolOutput.results``), which OpenAI
shows under ``step_details.tool_calls[*].file_search.results`` (their text with
``include[]=step_details.tool_calls[*].file_search.results[*].content``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant_kit.server.knowledge.attachments import vector_store_ids
from assistant_kit.server.knowledge.citations import marker
from assistant_kit.server.knowledge.vector_stores import VectorStores
from assistant_kit.server.store.base import Store
from assistant_kit.server.tools.base import BuiltinTool, ToolContext, ToolOutput
from assistant_kit.server.tools.guard import string_argument
from assistant_kit.server.tools.runner import Tools, find_tool

DEFAULT_RESULTS = 20


class FileSearchTool(BuiltinTool):
    type = "file_search"

    def __init__(self, stores: VectorStores, store: Store) -> None:
        self.stores = stores
        self.store = store

    def definition(self) -> Mapping[str, Any]:
        return {
            "name": "file_search",
            "description": (
                "Search the files attached to this assistant and conversation. Cite what you "
                "use by copying its marker, e.g. 【0:0†file.md】, into your answer."
            ),
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "What to look for."}},
                "required": ["query"],
            },
        }

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        query = string_argument(arguments, "query")
        run = self.store.get_run(context.run_id)
        assistant = await self.store.get_assistant(run.assistant_id) if run else None
        thread = await self.store.get_thread(context.thread_id)
        ids = vector_store_ids(
            assistant.tool_resources if assistant else None,
            thread.tool_resources if thread else None,
        )
        if not ids:
            return ToolOutput("error: no vector store is attached to search", is_error=True)
        options = context.config.get("file_search") or {}
        limit = options.get("max_num_results") or DEFAULT_RESULTS
        threshold = (options.get("ranking_options") or {}).get("score_threshold") or 0.0
        await self.stores.settled(ids)  # files attached just before the run are searched too
        hits = await self.stores.search(ids, query, limit=int(limit), score_threshold=threshold)
        search = self._searches_before(context.run_id)
        lines = [f'Results for "{query}" (cite one by copying its marker):']
        results = []
        for i, hit in enumerate(hits):
            lines.append(f"{marker(search, i, hit.filename)} {hit.chunk.text}")
            results.append(
                {
                    "file_id": hit.file_id,
                    "filename": hit.filename,
                    "score": round(hit.score, 6),
                    "text": hit.chunk.text,
                }
            )
        if not hits:
            lines.append("(nothing found)")
        return ToolOutput("\n\n".join(lines), results=tuple(results))

    def _searches_before(self, run_id: str) -> int:
        """How many file_search calls the run's earlier steps made (this call's number)."""
        return sum(
            1
            for step in self.store.steps(run_id)
            for call in (step.step_details.get("tool_calls") or ())
            if call.get("type") == self.type and call.get("output") is not None
        )


class WithFileSearch:
    """The server's tools plus ``file_search`` (which needs the app's store and vector stores,
    so ``create_app`` adds it rather than the kit.yaml registry)."""

    def __init__(self, tools: Tools, file_search: FileSearchTool) -> None:
        self.tools = tools
        self.file_search = file_search

    def resolve(self, entry: Mapping[str, Any]) -> BuiltinTool | None:
        if entry.get("type") == FileSearchTool.type:
            return self.file_search
        return find_tool(self.tools, entry)
