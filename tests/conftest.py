"""Suite-wide fixtures."""

from __future__ import annotations

import pytest

#: Variables that could send a test to a real service or leak a real key.
_UNSAFE_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_HTTP_BASE_URL",
    "DASHSCOPE_API_KEY_FILE_PATH",
    "KIT_SERVER_API_KEYS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches a real service by accident (httpx's clean_environ)."""
    for name in _UNSAFE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
