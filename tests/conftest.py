"""Suite-wide fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the one list of variables that could send a test to a real service or leak a real key; child
# processes started by the helpers in conformance/ and reliability/ are cleaned with it too
sys.path.insert(0, str(Path(__file__).resolve().parent / "conformance"))
from kit_server import UNSAFE_ENV


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches a real service by accident (httpx's clean_environ)."""
    for name in UNSAFE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
