"""Errors are translated once, at the edge, whatever envelope the target uses."""

from __future__ import annotations

import httpx
import pytest

from assistant_kit.api import AssistantParams, DashScopeClient, OpenAIClient
from assistant_kit.errors import ApiConnectionError, ApiError

pytestmark = pytest.mark.anyio


def fake_openai(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/assistants/asst_gone"):
        return httpx.Response(
            404,
            json={
                "error": {
                    "message": "No assistant found with id 'asst_gone'.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
            headers={"x-request-id": "req_1"},
        )
    if request.url.path.endswith("/assistants/asst_html"):
        return httpx.Response(502, text="<html>bad gateway</html>")
    if request.url.path.endswith("/assistants/asst_list"):
        return httpx.Response(200, json=[1, 2])
    assert request.headers["OpenAI-Beta"] == "assistants=v2"
    assert request.headers["Authorization"] == "Bearer sk-test"
    return httpx.Response(
        200, json={"id": "asst_1", "object": "assistant", "created_at": 1700000000, "model": "m"}
    )


def fake_dashscope(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        401,
        json={"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "r-1"},
    )


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


async def test_openai_seconds_become_ms_and_headers_are_sent() -> None:
    transport = httpx.MockTransport(fake_openai)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test/v1") as http:
        client = OpenAIClient(http, api_key="sk-test")
        assistant = await client.get_assistant("asst_1")
    assert assistant.created_at == 1_700_000_000_000


async def test_an_openai_error_envelope_becomes_an_api_error() -> None:
    transport = httpx.MockTransport(fake_openai)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test/v1") as http:
        with pytest.raises(ApiError) as info:
            await OpenAIClient(http, api_key="sk-test").get_assistant("asst_gone")
    error = info.value
    assert (error.status, error.request_id, error.dialect) == (404, "req_1", "openai")
    assert error.message == "No assistant found with id 'asst_gone'."
    assert error.code == "invalid_request_error"


async def test_a_dashscope_error_envelope_becomes_an_api_error() -> None:
    transport = httpx.MockTransport(fake_dashscope)
    async with httpx.AsyncClient(transport=transport, base_url="https://ds.test/api/v1") as http:
        with pytest.raises(ApiError) as info:
            await DashScopeClient(http, api_key="x").create_assistant(AssistantParams(model="m"))
    assert (info.value.status, info.value.code, info.value.request_id) == (
        401,
        "InvalidApiKey",
        "r-1",
    )


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [("asst_html", 502, "http_error"), ("asst_list", 200, "invalid_response")],
)
async def test_bodies_that_are_not_envelopes_still_raise(path: str, status: int, code: str) -> None:
    transport = httpx.MockTransport(fake_openai)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test/v1") as http:
        with pytest.raises(ApiError) as info:
            await OpenAIClient(http).get_assistant(path)
    assert (info.value.status, info.value.code) == (status, code)


async def test_a_refused_connection_is_an_api_connection_error() -> None:
    transport = httpx.MockTransport(refuse)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test/v1") as http:
        with pytest.raises(ApiConnectionError, match="ConnectError") as info:
            await OpenAIClient(http).list_assistants()
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.dialect == "openai"
