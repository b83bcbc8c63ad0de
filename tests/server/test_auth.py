"""Every route asks for a bearer key; keys come from config; no key means loopback only."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from assistant_kit.errors import ApiError, ConfigError
from assistant_kit.server.app import ServerConfig, create_app
from assistant_kit.server.auth import (
    Authenticator,
    TrustedHosts,
    check_bind,
    host_name,
    is_loopback,
    keys_from_env,
)

pytestmark = pytest.mark.anyio

ROUTES = [
    ("POST", "/assistants"),
    ("GET", "/assistants"),
    ("GET", "/assistants/asst_x"),
    ("POST", "/assistants/asst_x"),
    ("PATCH", "/assistants/asst_x"),
    ("DELETE", "/assistants/asst_x"),
    ("POST", "/threads"),
    ("GET", "/threads/thread_x"),
    ("POST", "/threads/thread_x"),
    ("DELETE", "/threads/thread_x"),
    ("POST", "/threads/thread_x/messages"),
    ("GET", "/threads/thread_x/messages"),
    ("GET", "/threads/thread_x/messages/msg_x"),
    ("POST", "/threads/thread_x/messages/msg_x"),
    ("GET", "/no/such/route"),
]

AUTH_HEADERS = [
    pytest.param({}, id="missing"),
    pytest.param({"Authorization": "Bearer wrong"}, id="wrong-key"),
    pytest.param({"Authorization": "Bearer "}, id="empty-key"),
    pytest.param({"Authorization": "Basic dGVzdC1rZXk="}, id="not-bearer"),
]


@pytest.mark.parametrize("headers", AUTH_HEADERS)
@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_refuses_a_bad_key_in_both_envelopes(
    http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    http.headers.pop("Authorization")
    oa = await http.request(method, f"/v1{path}", headers=headers, json={"model": "m"})
    assert oa.status_code == 401
    assert oa.json()["error"]["code"] == "invalid_api_key"
    ds = await http.request(method, f"/api/v1{path}", headers=headers, json={"model": "m"})
    assert ds.status_code == 401
    assert ds.json()["code"] == "InvalidApiKey" and ds.json()["request_id"]


async def test_with_no_key_configured_any_non_empty_key_works(tmp_path: Path) -> None:
    app = create_app(ServerConfig(database=tmp_path / "kit.db"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kit") as http:
            ok = await http.get("/v1/assistants", headers={"Authorization": "Bearer anything"})
            assert ok.status_code == 200
            missing = await http.get("/api/v1/assistants")
            assert missing.status_code == 401


def test_keys_come_from_the_environment_comma_separated() -> None:
    assert keys_from_env({"KIT_SERVER_API_KEYS": " a, b ,,c"}) == ("a", "b", "c")
    assert keys_from_env({}) == ()


def test_any_of_several_keys_is_accepted() -> None:
    auth = Authenticator(["a", "b"])
    auth.check("Bearer b")
    auth.check("bearer a")
    with pytest.raises(ApiError) as info:
        auth.check("Bearer c")
    assert info.value.status == 401


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hosts_may_run_without_a_key(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, ())


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::"])
def test_other_hosts_need_a_key(host: str) -> None:
    with pytest.raises(ConfigError, match="without an API key"):
        check_bind(host, ())
    with pytest.raises(ConfigError):
        create_app(ServerConfig(host=host))
    check_bind(host, ("k",))


# -- Host (DNS rebinding) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8900", "127.0.0.1"),
        ("LocalHost", "localhost"),
        ("[::1]:8900", "[::1]"),
        ("kit.internal:443", "kit.internal"),
        ("evil.example", "evil.example"),
    ],
)
def test_host_names_drop_the_port(header: str, name: str) -> None:
    assert host_name(header) == name


def test_without_keys_only_loopback_and_configured_names_are_trusted() -> None:
    hosts = TrustedHosts.for_server((), ("kit.internal",))
    assert hosts is not None
    for ok in ("127.0.0.1:8900", "localhost:8900", "[::1]:8900", "127.0.0.2", "KIT.internal"):
        assert hosts.allows(ok), ok
    for bad in ("evil.example:8900", "127.0.0.1.evil.example", "", None, "localhost.evil"):
        assert not hosts.allows(bad), bad


def test_with_keys_any_host_unless_names_are_configured() -> None:
    assert TrustedHosts.for_server(("k",), ()) is None
    assert TrustedHosts.for_server((), ("*",)) is None
    hosts = TrustedHosts.for_server(("k",), ("api.example",))
    assert hosts is not None and hosts.allows("api.example") and not hosts.allows("evil.example")


async def test_a_rebound_host_is_refused_before_the_key_in_both_envelopes(tmp_path: Path) -> None:
    # a page on evil.example whose name now resolves to 127.0.0.1: same origin for the browser,
    # any bearer key accepted by a keyless server; only the Host header gives it away
    hosts = TrustedHosts.for_server((), ())
    app = create_app(ServerConfig(database=tmp_path / "kit.db", trusted_hosts=hosts))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": "Bearer anything"}
        async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as http:
            for method, path in [("GET", "/assistants"), ("POST", "/threads"), ("GET", "/nope")]:
                oa = await http.request(method, f"/v1{path}", headers=headers)
                assert oa.status_code == 400, oa.text
                assert oa.json()["error"]["code"] == "invalid_host"
                ds = await http.request(method, f"/api/v1{path}", headers=headers)
                assert ds.status_code == 400, ds.text
                assert ds.json()["code"] == "InvalidParameter" and "evil.example" in ds.text
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8900") as http:
            assert (await http.get("/v1/assistants", headers=headers)).status_code == 200


# -- trailing slashes ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/assistants/", "/api/v1/assistants/", "/v1/", "/api/v1/"])
async def test_a_trailing_slash_is_not_redirected_before_authentication(
    http: httpx.AsyncClient, path: str
) -> None:
    anonymous = await http.get(path, headers={"Authorization": ""})
    assert anonymous.status_code == 401, anonymous.headers
    assert "location" not in anonymous.headers
    known = await http.get(path)
    assert known.status_code == 404 and "location" not in known.headers
