"""The OpenAI Assistants v2 dialect of ``AssistantClient``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from assistant_kit.api.http import HTTPAssistantClient


class OpenAIClient(HTTPAssistantClient):
    """Talks to ``.../v1`` of an OpenAI-Assistants-v2 endpoint (timestamps in seconds).

    ``http`` is an ``httpx.AsyncClient`` whose ``base_url`` ends in ``/v1``::

        http = httpx.AsyncClient(base_url="http://127.0.0.1:8900/v1")
        client = OpenAIClient(http, api_key=os.environ["OPENAI_API_KEY"])
    """

    dialect = "openai"
    extra_headers: ClassVar[Mapping[str, str]] = {"OpenAI-Beta": "assistants=v2"}

    def to_ms(self, value: Any) -> int:
        return int(value or 0) * 1000
