"""The client of each wire dialect: one registration line per dialect.

A new wire on the client side is one ``AssistantClient`` module in ``api/``, its entry in
``catalog.WIRE_DIALECTS`` (what its bodies carry, where it is served) and one class in
``CLIENTS`` below; a test keeps the two lists equal::

    client = client_for(project.target.dialect, http, api_key=key)
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from assistant_kit.api.base import AssistantClient
from assistant_kit.api.dashscope import DashScopeClient
from assistant_kit.api.http import HTTPAssistantClient
from assistant_kit.api.openai import OpenAIClient
from assistant_kit.catalog import DIALECTS

__all__ = ["CLIENTS", "client_for"]

#: Dialect name -> the client class speaking it (each class names its dialect).
CLIENTS: Mapping[str, type[HTTPAssistantClient]] = {
    cls.dialect: cls
    for cls in (
        DashScopeClient,
        OpenAIClient,
    )
}


def client_for(
    dialect: str, http: httpx.AsyncClient, *, api_key: str | None = None
) -> AssistantClient:
    """The ``AssistantClient`` of ``dialect`` over ``http``."""
    cls = CLIENTS.get(dialect)
    if cls is None:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    return cls(http, api_key=api_key)
