"""Custom plugins: endpoints on loopback, schema-checked, auth from env, allowlisted hosts."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from assistant_kit.errors import ConfigError
from assistant_kit.server.tools.base import ToolContext
from assistant_kit.server.tools.plugins import HostAllowlist, PluginSpec, PluginTool

pytestmark = pytest.mark.anyio

#: The loopback plug-in servers of these tests are reachable only because they opt in.
LOOPBACK = ["127.0.0.0/8"]
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def weather(seen):
    if seen.path.startswith("/weather"):
        body = {"path": seen.path, "query": seen.query, "auth": "authorization" in seen.headers}
        return 200, {}, body
    if seen.path == "/orders":
        return 201, {}, {"created": json.loads(seen.body)}
    if seen.path == "/broken":
        return 500, {}, {"message": "database down"}
    if seen.path == "/big":
        return 200, {"Content-Type": "text/plain"}, "y" * 200_000
    if seen.path == "/slow":
        time.sleep(1)
        return 200, {}, {}
    return 404, {}, {}


def plugin(server, **entry) -> PluginTool:
    config = {"id": "weather", "method": "GET", "url": f"{server.url}/weather", **entry}
    return PluginTool(PluginSpec.from_config(config), HostAllowlist(["127.0.0.1"], LOOPBACK))


async def test_get_sends_arguments_as_query_and_auth_from_the_environment(
    loopback, context, monkeypatch
):
    monkeypatch.setenv("KIT_TEST_WEATHER_TOKEN", "tok-123")
    server = loopback(weather)
    tool = plugin(
        server,
        parameters=CITY,
        auth={"header": "Authorization", "scheme": "Bearer", "env": "KIT_TEST_WEATHER_TOKEN"},
    )
    result = await tool.call({"city": "Paris"}, context)
    await tool.aclose()
    assert not result.is_error
    assert json.loads(result.output) == {
        "path": "/weather",
        "query": {"city": ["Paris"]},
        "auth": True,
    }
    assert server.seen[0].headers["authorization"] == "Bearer tok-123"
    assert "tok-123" not in result.output


async def test_url_placeholders_are_filled_and_quoted(loopback, context):
    server = loopback(weather)
    tool = plugin(server, url=f"{server.url}/weather/{{city}}", parameters=CITY)
    result = await tool.call({"city": "../admin@evil.example"}, context)
    await tool.aclose()
    assert json.loads(result.output)["path"] == "/weather/%2E%2E%2Fadmin%40evil%2Eexample"
    assert server.seen[0].query == {}


async def test_post_sends_arguments_as_json(loopback, context):
    server = loopback(weather)
    tool = plugin(server, method="POST", url=f"{server.url}/orders")
    result = await tool.call({"item": "brush", "count": 2}, context)
    await tool.aclose()
    assert json.loads(result.output) == {"created": {"item": "brush", "count": 2}}


async def test_arguments_that_break_the_schema_are_refused_before_any_request(loopback, context):
    server = loopback(weather)
    tool = plugin(server, parameters=CITY)
    result = await tool.call({"city": 7}, context)
    missing = await tool.call({}, context)
    assert result.is_error
    assert result.output == "weather failed: invalid arguments: city: 7 is not of type 'string'"
    assert missing.output == (
        "weather failed: invalid arguments: (arguments): 'city' is a required property"
    )
    assert server.seen == []


async def test_a_stored_token_reference_reads_the_environment(loopback, files, monkeypatch):
    server = loopback(weather)
    tool = plugin(server, auth={"env": "KIT_TEST_WEATHER_TOKEN"})
    monkeypatch.setenv("KIT_TEST_WEATHER_TOKEN", "tok-from-env")
    entry = {
        "type": "weather",
        "auth": {"type": "user_http", "user_token": "${KIT_TEST_WEATHER_TOKEN}"},
    }
    context = ToolContext("thread_1", "run_1", files.save, config=entry)
    result = await tool.call({}, context)
    await tool.aclose()
    assert not result.is_error
    assert server.seen[0].headers["authorization"] == "Bearer tok-from-env"


async def test_a_literal_token_left_in_an_old_store_is_never_sent(loopback, files, monkeypatch):
    server = loopback(weather)
    tool = plugin(server, auth={"env": "KIT_TEST_WEATHER_TOKEN"})
    monkeypatch.setenv("KIT_TEST_WEATHER_TOKEN", "tok-from-env")
    entry = {"type": "weather", "auth": {"type": "user_http", "user_token": "user-tok"}}
    context = ToolContext("thread_1", "run_1", files.save, config=entry)
    result = await tool.call({}, context)
    await tool.aclose()
    assert result.output == (
        "weather failed: the assistant's plug-in token is not usable here; apply it again"
    )
    assert server.seen == []


async def test_a_missing_credential_is_an_error_output(loopback, context, monkeypatch):
    monkeypatch.delenv("KIT_TEST_UNSET_TOKEN", raising=False)
    server = loopback(weather)
    tool = plugin(server, auth={"env": "KIT_TEST_UNSET_TOKEN"})
    result = await tool.call({}, context)
    assert result.output == (
        "weather failed: no credential: set the KIT_TEST_UNSET_TOKEN environment variable"
    )
    assert server.seen == []


async def test_an_upstream_error_is_an_error_output(loopback, context):
    server = loopback(weather)
    tool = plugin(server, url=f"{server.url}/broken")
    result = await tool.call({}, context)
    await tool.aclose()
    assert result.is_error
    assert result.output == 'HTTP 500: {"message": "database down"}'


async def test_a_huge_answer_is_capped(loopback, context):
    server = loopback(weather)
    tool = plugin(server, url=f"{server.url}/big", max_output_chars=1000)
    result = await tool.call({}, context)
    await tool.aclose()
    assert result.output.startswith("y" * 1000 + "\n[output truncated: ")


async def test_a_slow_plugin_times_out_into_an_error_output(loopback, context):
    server = loopback(weather)
    tool = plugin(server, url=f"{server.url}/slow", timeout_s=0.2)
    result = await tool.call({}, context)
    await tool.aclose()
    assert result.output == "weather failed: timed out after 0.2 s"


async def test_a_redirect_is_refused_and_not_followed(loopback, context):
    target = loopback(weather)
    redirector = loopback(lambda seen: (302, {"Location": f"{target.url}/weather"}, ""))
    port = redirector.url.rsplit(":", 1)[1]
    spec = PluginSpec.from_config({"id": "hop", "url": f"{redirector.url}/go"})
    tool = PluginTool(spec, HostAllowlist([f"127.0.0.1:{port}"], LOOPBACK))
    result = await tool.call({}, context)
    await tool.aclose()
    assert result.output == "hop failed: HTTP 302 redirect refused (redirects are not followed)"
    assert target.seen == []


def test_a_plugin_on_a_host_outside_the_allowlist_is_a_config_error():
    spec = PluginSpec.from_config({"id": "evil", "url": "http://169.254.169.254/latest/meta-data"})
    with pytest.raises(ConfigError, match=r"not in server\.allowed_hosts"):
        PluginTool(spec, HostAllowlist(["api.example.com"]))


async def test_a_filled_url_that_leaves_the_allowlist_is_refused(context):
    spec = PluginSpec.from_config({"id": "any", "url": "http://{host}/x"})
    tool = PluginTool(spec, HostAllowlist(["x"]))
    result = await tool.call({"host": "169.254.169.254"}, context)
    assert result.is_error
    assert "is not allowed" in result.output


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        pytest.param("https://api.example.com/v1", True, id="listed-host"),
        pytest.param("https://API.Example.com./v1", True, id="case-and-trailing-dot"),
        pytest.param("http://127.0.0.1:8080/x", True, id="host-with-port-entry"),
        pytest.param("http://127.0.0.1:8081/x", False, id="other-port"),
        pytest.param("http://localhost:8080/x", False, id="other-name-same-machine"),
        pytest.param("https://api.example.com.evil.net/", False, id="suffix-trick"),
        pytest.param("https://evil.net/?u=api.example.com", False, id="query-trick"),
        pytest.param("http://api.example.com@evil.net/", False, id="userinfo-trick"),
        pytest.param("ftp://api.example.com/", False, id="other-scheme"),
        pytest.param("http://[::1]:8080/", True, id="ipv6-with-port"),
    ],
)
def test_host_allowlist(url, allowed):
    allowlist = HostAllowlist(["api.example.com", "127.0.0.1:8080", "[::1]:8080"])
    assert allowlist.allows(httpx.URL(url)) is allowed


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param({"id": "bad id", "url": "http://x/"}, "bad id", id="id"),
        pytest.param({"id": "p", "url": "file:///etc/passwd"}, "http", id="scheme"),
        pytest.param({"id": "p", "url": "http://x/", "method": "TRACE"}, "method", id="method"),
        pytest.param(
            {"id": "p", "url": "http://x/", "parameters": {"type": "nope"}},
            "not a JSON Schema",
            id="schema",
        ),
        pytest.param({"id": "p", "url": "http://x/", "auth": {"header": "X"}}, "env", id="auth"),
    ],
)
def test_bad_plugin_entries_are_config_errors(entry, message):
    with pytest.raises(ConfigError, match=message):
        PluginSpec.from_config(entry)


async def test_a_shared_client_that_follows_redirects_still_does_not_follow(loopback, context):
    target = loopback(weather)
    redirector = loopback(lambda seen: (307, {"Location": f"{target.url}/weather"}, ""))
    spec = PluginSpec.from_config({"id": "hop", "url": f"{redirector.url}/go"})
    async with httpx.AsyncClient(follow_redirects=True) as shared:
        tool = PluginTool(spec, HostAllowlist(["127.0.0.1"], LOOPBACK), http=shared)
        result = await tool.call({}, context)
    assert result.is_error
    assert "redirect refused" in result.output
    assert target.seen == []
