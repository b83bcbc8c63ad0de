"""Whatever JSON a client sends to a write route, the answer is never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from assistant_kit.server.app import ServerConfig, create_app

FIELDS = [
    "model",
    "name",
    "description",
    "instructions",
    "tools",
    "file_ids",
    "metadata",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "response_format",
    "tool_resources",
    "messages",
    "role",
    "content",
    "attachments",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "text", "function", "name", "value"]) | st.text(max_size=4),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=6)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db: Path = tmp_path_factory.mktemp("fuzz") / "kit.db"
    with TestClient(
        create_app(ServerConfig(database=db)), headers={"Authorization": "Bearer k"}
    ) as c:
        yield c


@pytest.fixture(scope="module")
def paths(client: TestClient) -> list[str]:
    assistant = client.post("/v1/assistants", json={"model": "m"}).json()["id"]
    thread = client.post("/v1/threads", json={}).json()["id"]
    message = client.post(f"/v1/threads/{thread}/messages", json={"content": "x"}).json()["id"]
    return [
        "/assistants",
        f"/assistants/{assistant}",
        "/threads",
        f"/threads/{thread}",
        f"/threads/{thread}/messages",
        f"/threads/{thread}/messages/{message}",
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, index=st.integers(0, 5), dashscope=st.booleans())
def test_no_body_makes_a_500(
    client: TestClient, paths: list[str], body: dict[str, Any], index: int, dashscope: bool
) -> None:
    prefix = "/api/v1" if dashscope else "/v1"
    response = client.post(prefix + paths[index], json=body)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        payload = response.json()
        assert ("code" in payload) if dashscope else ("error" in payload)
