"""Whatever request arrives, the server answers in the dialect's envelope and never with a 5xx."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit_fuzz_http import (
    KEY,
    OPENAPI,
    ApiUnderTest,
    Request,
    app_routes,
    error_schemas,
    operations,
    requests,
)
from kit_fuzz_settings import fuzz_settings

from assistant_kit.server.endpoints import MAX_JSON_DEPTH


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiUnderTest]:
    under_test = ApiUnderTest(tmp_path_factory.mktemp("http-fuzz") / "kit.db")
    yield under_test
    under_test.close()


def test_the_openapi_document_lists_every_route_of_the_app(api: ApiUnderTest) -> None:
    documented = {(op.path, op.method) for op in operations()}
    routed = {(path, method) for path, methods in app_routes(api.app) for method in methods}
    assert routed - documented == set(), "routes missing from schemas/openapi.json"
    assert documented - routed == set(), "schemas/openapi.json documents routes the app lacks"


def test_the_openapi_document_is_well_formed() -> None:
    """OpenAPI 3.1, every operation named once, every schema valid JSON Schema 2020-12 with
    every reference resolving (``operations()`` inlines them all)."""
    doc = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert doc["openapi"].startswith("3.1")
    ids = [op.operation_id for op in operations()]
    assert len(ids) == len(set(ids))
    for op in operations():
        for schema in (op.body, op.response, *op.query.values()):
            if schema is not None:
                jsonschema.Draft202012Validator.check_schema(schema)
        assert set(op.path_params) == set(re.findall(r"\{(\w+)\}", op.path))
    for schema in error_schemas().values():
        jsonschema.Draft202012Validator.check_schema(schema)


@fuzz_settings(600)
@given(data=st.data())
def test_fuzzed_requests_get_enveloped_answers(api: ApiUnderTest, data: st.DataObject) -> None:
    request: Request = data.draw(requests(api.pool))
    api.check(request)


# -- what the fuzzer found (each was a 500) ----------------------------------------------------

SURROGATE_BODIES = [
    pytest.param("/assistants", b'{"model": "m", "name": "\\ud800"}', id="escaped-in-value"),
    pytest.param("/threads", b'{"metadata": {"\\udfff": "x"}}', id="escaped-in-key"),
    pytest.param("/threads", b'{"messages": [{"content": "\xed\xa0\x80"}]}', id="raw-bytes"),
]


@pytest.mark.parametrize(("path", "raw"), SURROGATE_BODIES)
@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_a_lone_surrogate_in_a_body_is_a_400(
    api: ApiUnderTest, prefix: str, path: str, raw: bytes
) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    response = api.send("POST", prefix + path, content=raw, headers=headers)
    assert response.status_code == 400
    message = (
        response.json()["message"] if prefix == "/api/v1" else response.json()["error"]["message"]
    )
    assert "lone UTF-16 surrogate" in message


def test_a_newline_in_a_dashscope_path_is_a_dashscope_404(api: ApiUnderTest) -> None:
    """A path with a newline is answered in the dialect of the mount it sits under, through the
    real server too (Starlette's mount pattern stopped at the newline: OpenAI's envelope)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    response = api.send("POST", "/api/v1/threads/thread_x/runs/run_%0A/cancel", headers=headers)
    assert response.status_code == 404
    assert response.json()["code"] and "request_id" in response.json()


def test_a_surrogate_pair_is_text(api: ApiUnderTest) -> None:
    response = api.send(
        "POST",
        "/v1/assistants",
        content=b'{"model": "m", "name": "\\ud83d\\ude00"}',
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["name"] == "\U0001f600"


@pytest.mark.parametrize("depth", [129, 600, 955])
def test_json_nested_deeper_than_the_limit_is_a_400(api: ApiUnderTest, depth: int) -> None:
    nested = '{"a":' * depth + "1" + "}" * depth
    for field in ("tool_resources", "response_format"):
        body = f'{{"model": "m", "{field}": {nested}}}'.encode()
        response = api.send(
            "POST",
            "/v1/assistants",
            content=body,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_json"


def test_json_nested_to_the_limit_is_stored_and_read_back(api: ApiUnderTest) -> None:
    nested: object = 1
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = {"a": nested}
    made = api.send("POST", "/v1/threads", json={"tool_resources": nested})
    assert made.status_code == 200, made.text
    again = api.send("GET", f"/api/v1/threads/{made.json()['id']}")
    assert again.status_code == 200


def test_text_annotations_that_are_not_a_list_are_a_400(api: ApiUnderTest) -> None:
    thread = api.send("POST", "/v1/threads", json={}).json()["id"]
    part = {"type": "text", "text": {"value": "a", "annotations": 5}}
    response = api.send("POST", f"/api/v1/threads/{thread}/messages", json={"content": [part]})
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidParameter"


@pytest.mark.parametrize(
    "field", ["top_k", "max_tokens", "max_prompt_tokens", "max_completion_tokens"]
)
@pytest.mark.parametrize("value", [2**31, 2**63, 10**30])
def test_a_run_setting_too_large_to_store_is_a_400(
    api: ApiUnderTest, field: str, value: int
) -> None:
    assistant = "asst_" + api.pool.assistant[0]
    for prefix in ("/v1", "/api/v1"):
        body = {"assistant_id": assistant, "thread": {"messages": [{"content": "x"}]}, field: value}
        response = api.send("POST", f"{prefix}/threads/runs", json=body)
        assert response.status_code == 400, response.text
    strategy = {"type": "last_messages", "last_messages": 2**63}
    body = {"assistant_id": assistant, "truncation_strategy": strategy}
    response = api.send("POST", "/v1/threads/runs", json=body)
    assert response.status_code == 400, response.text
