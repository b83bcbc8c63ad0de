"""Auth on every route, the refusal to serve a public host without keys, request size limits."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from kit_fuzz_http import app_routes, error_schemas
from kit_processes import KitServe, free_port, run_kit
from starlette.applications import Starlette

from assistant_kit.server.app import ServerConfig, create_app

KEY = "the-right-key"
LIMIT = 4096
BAD_AUTH = [
    pytest.param({}, id="no-header"),
    pytest.param({"Authorization": "Bearer wrong"}, id="wrong-key"),
    pytest.param({"Authorization": f"Bearer {KEY}x"}, id="key-with-suffix"),
    pytest.param({"Authorization": f"Bearer {KEY[:-1]}"}, id="key-prefix"),
    pytest.param({"Authorization": "Bearer "}, id="empty-key"),
    pytest.param({"Authorization": f"Basic {KEY}"}, id="basic-scheme"),
    pytest.param({"Authorization": KEY}, id="no-scheme"),
    pytest.param({"X-Api-Key": KEY}, id="other-header"),
]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    application = create_app(
        ServerConfig(
            database=tmp_path / "kit.db", api_keys=(KEY, "second-key"), max_body_bytes=LIMIT
        )
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://kit"
    ) as client:
        yield client


def concrete(path: str) -> str:
    """A route path with every parameter filled in (ids that exist nowhere)."""
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: m.group(1).removesuffix("_id") + "_x1", path)


#: Liveness and readiness probes: deliberately without a key (tests/server/test_health.py).
PROBES = frozenset({"/health", "/ready"})


def every_request(app: Starlette) -> Iterator[tuple[str, str]]:
    """(method, path) for every method of every API route, plus one method no route takes."""
    for path, methods in app_routes(app):
        if path in PROBES:
            continue
        for method in sorted(methods | {"HEAD", "PUT"} if "GET" in methods else methods | {"PUT"}):
            yield method, concrete(path)


def check_envelope(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    if response.request.method == "HEAD":
        return
    body = response.json()
    dialect = "dashscope" if response.request.url.path.startswith("/api/v1/") else "openai"
    jsonschema.validate(body, error_schemas()[dialect])
    if status == 401:
        code = body["code"] if dialect == "dashscope" else body["error"]["code"]
        assert code == ("InvalidApiKey" if dialect == "dashscope" else "invalid_api_key")
    assert KEY not in response.text


@pytest.mark.anyio
@pytest.mark.parametrize("headers", BAD_AUTH)
async def test_every_route_refuses_a_missing_or_wrong_key(
    app: Starlette, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    walked = list(every_request(app))
    paths = {path for _, path in walked}
    # the walk covers both dialects and at least the CRUD routes (more as routes are added)
    assert sum(p.startswith("/v1/") for p in paths) >= 6
    assert sum(p.startswith("/api/v1/") for p in paths) >= 6
    for method, path in [*walked, ("GET", "/"), ("POST", "/nowhere"), ("GET", "/api/v1/x")]:
        content = b'{"model": "m"}' if method in ("POST", "PATCH", "PUT") else None
        response = await http.request(
            method, path, headers={**headers, "Content-Type": "application/json"}, content=content
        )
        check_envelope(response, 401)


@pytest.mark.anyio
async def test_every_route_lets_a_right_key_through(
    app: Starlette, http: httpx.AsyncClient
) -> None:
    """The walk is not vacuous: with either configured key nothing is a 401."""
    for index, (method, path) in enumerate(every_request(app)):
        key = KEY if index % 2 else "second-key"
        response = await http.request(method, path, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code != 401, (method, path, response.text)
        assert response.status_code < 500, (method, path, response.text)


@pytest.mark.anyio
@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
async def test_without_a_key_a_huge_body_is_refused_before_it_is_read(
    http: httpx.AsyncClient, prefix: str
) -> None:
    body = b"x" * (LIMIT * 4)
    response = await http.post(f"{prefix}/assistants", content=body)
    check_envelope(response, 401)


# -- request size limits ------------------------------------------------------------------------


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    yield b'{"model": "m", "instructions": "'
    while sent < total:
        yield b"a" * 1024
        sent += 1024
    yield b'"}'


@pytest.mark.anyio
@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_a_413_in_the_envelope(
    http: httpx.AsyncClient, prefix: str, chunked: bool
) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    content: bytes | AsyncIterator[bytes] = (
        _chunks(LIMIT) if chunked else b'{"model": "m", "name": "' + b"a" * LIMIT + b'"}'
    )
    response = await http.post(f"{prefix}/assistants", content=content, headers=headers)
    if chunked:
        assert "content-length" not in response.request.headers
    check_envelope(response, 413)


@pytest.mark.anyio
async def test_a_body_at_the_limit_is_read(http: httpx.AsyncClient) -> None:
    head, tail = b'{"model": "m", "description": "', b'"}'
    body = head + b"a" * (LIMIT - len(head) - len(tail)) + tail
    assert len(body) == LIMIT
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    response = await http.post("/v1/assistants", content=body, headers=headers)
    assert response.status_code == 400  # read and validated: description is over 512 characters
    assert "description" in response.json()["error"]["message"]


# -- kit serve: public hosts need keys; the default limit holds on a real socket ----------------


@pytest.mark.parametrize(
    ("host", "keys"),
    [
        pytest.param("0.0.0.0", None, id="all-interfaces"),
        pytest.param("::", None, id="all-interfaces-v6"),
        pytest.param("192.0.2.10", None, id="lan-address"),
        pytest.param("example.com", None, id="hostname"),
        pytest.param("0.0.0.0", " , ", id="blank-keys-in-env"),
    ],
)
def test_kit_serve_refuses_a_public_host_without_a_key(
    tmp_path: Path, host: str, keys: str | None
) -> None:
    port = free_port()
    env = {"KIT_SERVER_API_KEYS": keys} if keys is not None else None
    result = run_kit(
        ["serve", "--host", host, "--port", str(port), "--db", ":memory:"], tmp_path, env
    )
    assert result.returncode == 2, result
    assert f"refusing to listen on {host} without an API key" in result.stderr
    assert "KIT_SERVER_API_KEYS" in result.stderr and "--api-key" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    with socket.socket() as probe:  # nothing was left listening
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_kit_serve_on_a_public_host_with_a_key_serves_and_asks_for_it(tmp_path: Path) -> None:
    key = "public-host-key"
    env = {"KIT_SERVER_API_KEYS": key}
    with KitServe(tmp_path, key=key, host="0.0.0.0", pass_key=False, env=env) as server:
        with httpx.Client(trust_env=False) as http:
            assert http.get(server.url("/v1/assistants")).status_code == 401
            bad = http.get(server.url("/api/v1/assistants"), headers={"Authorization": "Bearer no"})
            assert bad.status_code == 401 and bad.json()["code"] == "InvalidApiKey"
            assert http.get(server.url("/v1/assistants"), headers=server.auth).status_code == 200
            big = b'{"model": "m", "name": "' + b"a" * (2 * 1024 * 1024) + b'"}'
            headers = {**server.auth, "Content-Type": "application/json"}
            too_large = http.post(server.url("/api/v1/assistants"), content=big, headers=headers)
            check_envelope(too_large, 413)
        assert server.stop() == 0
    assert key not in server.output() and "Traceback" not in server.output()
