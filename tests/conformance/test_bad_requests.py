"""Bad requests over a real socket: the right envelope and status, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kit_server import KitServer

JSON = {"content-type": "application/json"}
MISSING = "3f2a91c4-0000-4000-8000-000000000000"

CASES = [
    pytest.param("POST", "/assistants", b"{oops", JSON, 400, id="malformed-json"),
    pytest.param("POST", "/assistants", b'"just a string"', JSON, 400, id="body-not-object"),
    pytest.param(
        "POST",
        "/assistants",
        b'{"model":"m"}',
        {"content-type": "text/xml"},
        415,
        id="wrong-content-type",
    ),
    pytest.param("POST", "/assistants", b'{"name":"no model"}', JSON, 400, id="missing-model"),
    pytest.param("POST", "/assistants", b'{"model":"m","top_p":2}', JSON, 400, id="top-p-range"),
    pytest.param(
        "POST", "/assistants", b'{"model":"m","tools":[{}]}', JSON, 400, id="tool-without-type"
    ),
    pytest.param(
        "POST",
        "/assistants",
        b'{"model":"m","metadata":{"' + b"k" * 65 + b'":"v"}}',
        JSON,
        400,
        id="metadata-key-too-long",
    ),
    pytest.param(
        "POST",
        "/assistants",
        b'{"model":"' + b"m" * 3_000_000 + b'"}',
        JSON,
        413,
        id="body-over-limit",
    ),
    pytest.param("GET", f"/assistants/asst_{MISSING}", b"", {}, 404, id="unknown-assistant"),
    pytest.param("GET", "/assistants/not-an-id", b"", {}, 404, id="malformed-id"),
    pytest.param(
        "POST",
        f"/threads/thread_{MISSING}/messages",
        b'{"content":"x"}',
        JSON,
        404,
        id="message-in-unknown-thread",
    ),
    pytest.param("GET", "/assistants?limit=1000", b"", {}, 400, id="limit-over-100"),
    pytest.param("GET", "/assistants?order=sideways", b"", {}, 400, id="bad-order"),
    pytest.param("PUT", "/assistants", b"{}", JSON, 405, id="wrong-method"),
    pytest.param("GET", "/unknown/path", b"", {}, 404, id="unknown-path"),
]


@pytest.fixture(scope="module")
def http(kit_server: KitServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {kit_server.api_key}"}
    with httpx.Client(base_url=kit_server.base_url, headers=headers, trust_env=False) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), CASES)
def test_openai_dialect(
    http: httpx.Client, method: str, path: str, body: bytes, headers: dict, status: int
) -> None:
    response = http.request(method, f"/v1{path}", content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), CASES)
def test_dashscope_dialect(
    http: httpx.Client, method: str, path: str, body: bytes, headers: dict, status: int
) -> None:
    response = http.request(method, f"/api/v1{path}", content=body, headers=headers)
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"code", "message", "request_id"}
    assert payload["code"][0].isupper() and payload["message"]


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_no_key_is_401_everywhere(kit_server: KitServer, prefix: str) -> None:
    with httpx.Client(base_url=kit_server.base_url, trust_env=False) as anonymous:
        for method, path in [("GET", "/assistants"), ("POST", "/threads"), ("GET", "/x/y")]:
            assert anonymous.request(method, f"{prefix}{path}").status_code == 401
