"""Bad requests of every kind get the dialect's envelope and status, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

OA = "/v1"
DS = "/api/v1"
MISSING_THREAD = "thread_3f2a91c4-0000-4000-8000-000000000000"


def assert_openai_error(response: httpx.Response, status: int, code: Any = ...) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    if code is not ...:
        assert error["code"] == code
    assert response.headers["x-request-id"]
    return error


def assert_dashscope_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == code
    return body


JSON = {"content-type": "application/json"}

BAD_BODIES = [
    pytest.param(b"[" * 100_000, JSON, 400, "invalid_json", "InvalidParameter", id="too-deep"),
    pytest.param(
        b'{"model": "m", "temperature": NaN}',
        JSON,
        400,
        "invalid_json",
        "InvalidParameter",
        id="nan",
    ),
    pytest.param(
        b'{"model": "m", "top_k": 100000000000000000000000}',
        JSON,
        400,
        "invalid_value",
        "InvalidParameter",
        id="huge-integer",
    ),
    pytest.param(
        # free-form: a function's parameters schema takes any JSON; 1e400 parses as infinity,
        # which would be stored and sent back as a bare Infinity (not JSON)
        b'{"model": "m", "tools": [{"type": "function", "function": {"name": "f", '
        b'"parameters": {"type": "object", "maximum": 1e400}}}]}',
        JSON,
        400,
        "invalid_json",
        "InvalidParameter",
        id="number-too-large-in-free-form",
    ),
    pytest.param(
        b'{"model": "m", "temperature": -1e400}',
        JSON,
        400,
        "invalid_json",
        "InvalidParameter",
        id="negative-number-too-large",
    ),
    pytest.param(b"{not json", JSON, 400, "invalid_json", "InvalidParameter", id="malformed-json"),
    pytest.param(b"\xff\xfe", JSON, 400, "invalid_json", "InvalidParameter", id="not-utf8"),
    pytest.param(b"[1, 2]", JSON, 400, "invalid_json", "InvalidParameter", id="not-an-object"),
    pytest.param(
        b'{"model": "m"}',
        {"content-type": "text/plain"},
        415,
        "unsupported_media_type",
        "UnsupportedMediaType",
        id="wrong-content-type",
    ),
    pytest.param(
        b"{}", JSON, 400, "missing_required_parameter", "InvalidParameter", id="missing-model"
    ),
    pytest.param(
        b'{"model": 7}', JSON, 400, "invalid_type", "InvalidParameter", id="model-not-a-string"
    ),
    pytest.param(
        b'{"model": "m", "temperature": 3}',
        JSON,
        400,
        "invalid_value",
        "InvalidParameter",
        id="temperature-out-of-range",
    ),
    pytest.param(
        b'{"model": "m", "tools": [{"type": "function", "function": {"name": "a b"}}]}',
        JSON,
        400,
        "invalid_value",
        "InvalidParameter",
        id="bad-function-name",
    ),
    pytest.param(
        b'{"model": "m", "metadata": {' + b",".join(b'"k%d": "v"' % i for i in range(17)) + b"}}",
        JSON,
        400,
        "invalid_value",
        "InvalidParameter",
        id="metadata-17-keys",
    ),
    pytest.param(
        b'{"model": "m", "metadata": {"' + b"k" * 65 + b'": "v"}}',
        JSON,
        400,
        "invalid_value",
        "InvalidParameter",
        id="metadata-key-65-chars",
    ),
    pytest.param(
        b'{"model": "m", "metadata": {"k": "' + b"v" * 513 + b'"}}',
        JSON,
        400,
        "invalid_value",
        "InvalidParameter",
        id="metadata-value-513-chars",
    ),
    pytest.param(
        b'{"model": "m", "metadata": {"k": 1}}',
        JSON,
        400,
        "invalid_type",
        "InvalidParameter",
        id="metadata-value-not-string",
    ),
]


@pytest.mark.parametrize(("body", "headers", "status", "oa_code", "ds_code"), BAD_BODIES)
async def test_bad_assistant_bodies_in_both_envelopes(
    http: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    status: int,
    oa_code: str,
    ds_code: str,
) -> None:
    assert_openai_error(
        await http.post(f"{OA}/assistants", content=body, headers=headers), status, oa_code
    )
    assert_dashscope_error(
        await http.post(f"{DS}/assistants", content=body, headers=headers), status, ds_code
    )


async def test_a_missing_parameter_names_it(http: httpx.AsyncClient) -> None:
    error = assert_openai_error(await http.post(f"{OA}/assistants", json={}), 400)
    assert error == {
        "message": "Missing required parameter: 'model'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "missing_required_parameter",
    }


async def test_a_bad_nested_message_names_its_path(http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{OA}/threads", json={"messages": [{"role": "bot", "content": "x"}]}
    )
    assert assert_openai_error(response, 400)["param"] == "messages[0].role"


@pytest.mark.parametrize("base", [OA, DS])
async def test_a_body_over_the_limit_is_413(http: httpx.AsyncClient, base: str) -> None:
    big = b'{"model": "' + b"m" * (3 * 1024 * 1024) + b'"}'
    response = await http.post(f"{base}/assistants", content=big, headers=JSON)
    assert response.status_code == 413
    assert "larger than" in response.text


async def test_a_chunked_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    async def chunks():
        for _ in range(40):
            yield b" " * 100_000

    response = await http.post(f"{OA}/assistants", content=chunks(), headers=JSON)
    assert_openai_error(response, 413, "request_too_large")


NOT_FOUND = [
    pytest.param("GET", "/assistants/asst_3f2a91c4-0000-4000-8000-000000000000", id="assistant"),
    pytest.param("GET", "/assistants/asst_garbage", id="malformed-assistant-id"),
    pytest.param("POST", "/assistants/asst_3f2a91c4-0000-4000-8000-000000000000", id="upd-asst"),
    pytest.param("DELETE", "/assistants/asst_3f2a91c4-0000-4000-8000-000000000000", id="del-asst"),
    pytest.param("GET", f"/threads/{MISSING_THREAD}", id="thread"),
    pytest.param("POST", f"/threads/{MISSING_THREAD}", id="update-thread"),
    pytest.param("DELETE", f"/threads/{MISSING_THREAD}", id="delete-thread"),
    pytest.param("POST", f"/threads/{MISSING_THREAD}/messages", id="message-in-missing-thread"),
    pytest.param("GET", f"/threads/{MISSING_THREAD}/messages", id="list-in-missing-thread"),
    pytest.param("GET", "/nowhere", id="unknown-path"),
    # a newline in the path once fell outside every mount (Starlette's path pattern stops at one)
    pytest.param("GET", f"/threads/{MISSING_THREAD}/runs/run_%0A0", id="newline-in-id"),
    pytest.param("GET", "/nowhere/x%0Ay", id="newline-in-unknown-path"),
]


@pytest.mark.parametrize(("method", "path"), NOT_FOUND)
async def test_unknown_ids_and_paths_are_404(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {"content": "x", "role": "user"} if "messages" in path else {}
    kwargs = {"json": body} if method == "POST" else {}
    assert_openai_error(await http.request(method, f"{OA}{path}", **kwargs), 404)
    assert_dashscope_error(await http.request(method, f"{DS}{path}", **kwargs), 404, "NotFound")


async def test_not_found_wording_uses_the_dialects_id(http: httpx.AsyncClient) -> None:
    tid = (await http.post(f"{OA}/threads", json={})).json()["id"]
    missing = "3f2a91c4-0000-4000-8000-000000000000"
    oa = await http.get(f"{OA}/threads/{tid}/messages/msg_{missing}")
    assert oa.json()["error"]["message"] == f"No message found with id 'msg_{missing}'."
    ds = await http.get(f"{DS}/threads/{tid}/messages/msg_{missing}")
    assert ds.json()["message"] == f"No message found with id 'message_{missing}'."


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"limit": 101}, id="limit-101"),
        pytest.param({"limit": "x"}, id="limit-text"),
        pytest.param({"order": "up"}, id="order"),
        pytest.param({"after": "asst_nope"}, id="malformed-after"),
        pytest.param({"before": "asst_3f2a91c4-0000-4000-8000-000000000000"}, id="unknown-before"),
    ],
)
async def test_bad_pagination_is_400(http: httpx.AsyncClient, params: dict[str, Any]) -> None:
    error = assert_openai_error(await http.get(f"{OA}/assistants", params=params), 400)
    assert error["param"] == next(iter(params))
    assert_dashscope_error(
        await http.get(f"{DS}/assistants", params=params), 400, "InvalidParameter"
    )


async def test_a_wrong_method_is_405_in_the_envelope(http: httpx.AsyncClient) -> None:
    assert_openai_error(await http.put(f"{OA}/assistants", json={}), 405)
    assert_dashscope_error(await http.delete(f"{DS}/threads"), 405, "MethodNotAllowed")


async def test_model_cannot_be_set_to_null(http: httpx.AsyncClient) -> None:
    aid = (await http.post(f"{OA}/assistants", json={"model": "m"})).json()["id"]
    assert_openai_error(await http.post(f"{OA}/assistants/{aid}", json={"model": None}), 400)


async def test_an_unexpected_failure_is_a_500_in_the_envelope(
    http: httpx.AsyncClient, app, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.state.context.store, "list_assistants", broken)
    response = await http.get(f"{OA}/assistants")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "disk on fire" not in response.text
    ds = await http.get(f"{DS}/assistants")
    assert ds.status_code == 500 and ds.json()["code"] == "InternalError"


BAD_RUN_SETTINGS = [
    pytest.param({"temperature": -5}, "temperature", id="temperature-below-0"),
    pytest.param({"temperature": 3}, "temperature", id="temperature-above-2"),
    pytest.param({"top_p": 99}, "top_p", id="top-p-above-1"),
    pytest.param({"tools": [{"type": "function"}]}, "tools[0].function", id="function-missing"),
    pytest.param(
        {"tools": [{"type": "function", "function": {"name": "a b"}}]},
        "tools[0].function.name",
        id="function-name",
    ),
    pytest.param({"instructions": "x" * 256_001}, "instructions", id="instructions-too-long"),
    pytest.param({"response_format": 5}, "response_format", id="response-format-type"),
    pytest.param({"file_ids": "abc"}, "file_ids", id="file-ids-a-string"),
    pytest.param({"file_ids": [1, 2]}, "file_ids[", id="file-ids-not-strings"),
    pytest.param({"tool_resources": "x"}, "tool_resources", id="tool-resources-type"),
    pytest.param({"tool_choice": {}}, "tool_choice", id="tool-choice-no-type"),
    pytest.param(
        {"tool_choice": {"type": "function", "function": "f"}}, "tool_choice", id="tool-choice-fn"
    ),
]


@pytest.mark.parametrize(("settings", "param"), BAD_RUN_SETTINGS)
async def test_run_overrides_obey_the_assistants_rules(
    http: httpx.AsyncClient, settings: dict[str, Any], param: str
) -> None:
    assistant = (await http.post(f"{OA}/assistants", json={"model": "m"})).json()["id"]
    thread = (await http.post(f"{OA}/threads", json={})).json()["id"]
    body = {"assistant_id": assistant, **settings}
    error = assert_openai_error(await http.post(f"{OA}/threads/{thread}/runs", json=body), 400)
    assert error["param"] == param or (param.endswith("[") and error["param"].startswith(param))
    assert_dashscope_error(
        await http.post(f"{DS}/threads/runs", json=body), 400, "InvalidParameter"
    )
    runs = (await http.get(f"{OA}/threads/{thread}/runs")).json()
    assert runs["data"] == []
