"""A real ``kit serve`` on loopback for the whole session, driven by the official SDKs.

Tests of later features that need the live server (runs, streams) go in this folder and get the
``kit_server``, ``openai_sdk`` and ``dashscope_sdk`` fixtures; ``kit_server.running_kit_server()``
starts another one with different options.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit_server import KitServer, running_kit_server


@pytest.fixture(scope="session")
def kit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    """``kit serve`` on a free port with a SQLite file, one per test session (per xdist worker)."""
    folder: Path = tmp_path_factory.mktemp("kit-serve")
    with running_kit_server(database=str(folder / "server.db"), output_dir=folder) as server:
        yield server


@pytest.fixture
def dashscope_sdk(kit_server: KitServer, monkeypatch: pytest.MonkeyPatch):
    """The ``dashscope`` module pointed at the server (base URL read on every call)."""
    import dashscope

    monkeypatch.setattr(dashscope, "base_http_api_url", kit_server.dashscope_url)
    monkeypatch.setattr(dashscope, "api_key", kit_server.api_key)
    return dashscope


@pytest.fixture
def openai_sdk(kit_server: KitServer) -> Iterator[object]:
    """An ``openai.OpenAI`` client on the server's ``/v1``; no retries so errors show at once."""
    from openai import OpenAI

    client = OpenAI(base_url=kit_server.openai_url, api_key=kit_server.api_key, max_retries=0)
    yield client
    client.close()
