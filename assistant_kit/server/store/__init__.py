"""The server's state: the seam, its SQLite implementation and the schema.

``base.py`` is the seam every other module imports (records, ``Table``, ``PageQuery`` / ``Page``,
the ``Store`` protocol with its unit of work ``Tx``, the typed errors); ``sqlite.py`` implements
it and is the only module that knows SQLite; ``migrations.py`` holds the schema. A new backend
is one module beside ``sqlite.py`` plus one branch in ``open_store``.
"""

from __future__ import annotations

from pathlib import Path

from assistant_kit.server.store.base import Store
from assistant_kit.server.store.sqlite import SqliteStore


def open_store(database: str | Path) -> Store:
    """The store for ``database`` (a SQLite file, or ``":memory:"``), not yet opened."""
    return SqliteStore(database)
