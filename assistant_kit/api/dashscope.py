"""The DashScope dialect of ``AssistantClient``."""

from __future__ import annotations

from typing import Any

from assistant_kit.api.base import AssistantParams
from assistant_kit.api.http import HTTPAssistantClient, JSONObject


class DashScopeClient(HTTPAssistantClient):
    """Talks to ``.../api/v1`` of a DashScope Assistant API endpoint (timestamps in ms).

    ``http`` is an ``httpx.AsyncClient`` whose ``base_url`` ends in ``/api/v1``::

        http = httpx.AsyncClient(base_url="https://dashscope.aliyuncs.com/api/v1")
        client = DashScopeClient(http, api_key=os.environ["DASHSCOPE_API_KEY"])
    """

    dialect = "dashscope"

    def to_ms(self, value: Any) -> int:
        return int(value or 0)

    def assistant_body(self, params: AssistantParams, *, update: bool) -> JSONObject:
        body = params.given()
        # DashScope reads an empty file_ids on update as "unchanged"; there is no way to clear
        # them, so do not pretend to.
        if update and body.get("file_ids") == []:
            del body["file_ids"]
        return body
