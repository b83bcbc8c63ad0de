"""Fixtures for the built-in tool tests: an in-memory file store and a tool context."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from assistant_kit.server.tools.base import StoredFile, ToolContext


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class MemoryFiles:
    """Stands in for the server's file store: keeps what tools save, hands out ids."""

    data: dict[str, bytes] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def save(self, data: bytes, filename: str, mime_type: str) -> StoredFile:
        file_id = f"file-{next(self._ids)}"
        self.data[file_id] = data
        return StoredFile(id=file_id, filename=filename, mime_type=mime_type, size=len(data))


@pytest.fixture
def files() -> MemoryFiles:
    return MemoryFiles()


@pytest.fixture
def context(files: MemoryFiles) -> ToolContext:
    return ToolContext(thread_id="thread_1", run_id="run_1", save_file=files.save)
