"""What the store keeps for vector stores: the stores, their files, file batches and the chunks.

Every row has a neutral id (a UUID). A file belongs to a vector store through a row whose id is
``link_id(vector_store_id, file_id)`` (a UUID5 of the pair), so ``GET .../files/{file_id}`` is one
lookup; a file's chunks live in a row of ``VECTOR_STORE_CHUNKS`` under the same id, apart from
the file row so that listing files never reads them. Chunks are stored as
``[[text, tokens, embedding | null], ...]``. Their schema is the store's ``m006_vector_stores``
migration (``store/migrations.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from assistant_kit.server.store.records import Table

#: A vector store file's statuses; ``in_progress`` ones are ingested (again, after a restart).
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


def link_id(vector_store_id: str, file_id: str) -> str:
    """The id of the row that puts ``file_id`` into ``vector_store_id``."""
    return str(uuid.uuid5(uuid.UUID(vector_store_id), file_id))


@dataclass(frozen=True, slots=True)
class VectorStoreRecord:
    id: str
    created_at: int
    name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    expires_after: dict[str, Any] | None = None
    expires_at: int | None = None
    last_active_at: int | None = None
    #: The chunking strategy of files added without one (``None``: auto).
    chunking_strategy: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class VectorStoreFileRecord:
    id: str
    created_at: int
    vector_store_id: str
    file_id: str
    status: str = "in_progress"
    usage_bytes: int = 0
    last_error: dict[str, str] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    chunking_strategy: dict[str, Any] | None = None
    batch_id: str | None = None


@dataclass(frozen=True, slots=True)
class FileBatchRecord:
    id: str
    created_at: int
    vector_store_id: str
    status: str = "in_progress"
    file_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChunksRecord:
    id: str
    created_at: int
    vector_store_id: str
    file_id: str
    chunks: list[list[Any]] = field(default_factory=list)


VECTOR_STORES: Table[VectorStoreRecord] = Table(
    "vector_stores",
    VectorStoreRecord,
    json_columns=("metadata", "expires_after", "chunking_strategy"),
)
VECTOR_STORE_FILES: Table[VectorStoreFileRecord] = Table(
    "vector_store_files",
    VectorStoreFileRecord,
    json_columns=("last_error", "attributes", "chunking_strategy"),
    scope="vector_store_id",
)
FILE_BATCHES: Table[FileBatchRecord] = Table(
    "vector_store_file_batches",
    FileBatchRecord,
    json_columns=("file_ids",),
    scope="vector_store_id",
)
VECTOR_STORE_CHUNKS: Table[ChunksRecord] = Table(
    "vector_store_chunks", ChunksRecord, json_columns=("chunks",), scope="vector_store_id"
)
