"""Plug-in calls under attack: path climbing, compression bombs, private addresses, tokens.

Each test reproduces an attack from issue 13 (item 4) against a real HTTP server on loopback (or
the server app over a real SQLite file) and checks that it is contained.
"""

from __future__ import annotations

import functools
import gzip
import json
import sqlite3
import tracemalloc
import zlib
from dataclasses import replace

import httpx
import pytest

from assistant_kit.server.app import create_app
from assistant_kit.server.config import ServerConfig
from assistant_kit.server.ids import new_id, now_ms
from assistant_kit.server.store import open_store
from assistant_kit.server.store.records import AssistantRecord
from assistant_kit.server.tools.plugins import NOT_STORED, HostAllowlist, PluginSpec, PluginTool
from assistant_kit.server.tools.registry import build_tools

pytestmark = pytest.mark.anyio

LOOPBACK = ["127.0.0.0/8"]


@functools.cache
def bomb() -> bytes:
    """130 MB of zeros, gzip-compressed to about 130 KB (the size the attack used)."""
    return gzip.compress(b"\0" * 130_000_000, compresslevel=9)


def items(seen):
    if seen.path == "/api/details":
        return 200, {}, {"leak": "the admin area"}
    if seen.path == "/bomb":
        return 200, {"Content-Encoding": "gzip", "Content-Type": "text/plain"}, bomb()
    if seen.path == "/deflate":
        return 200, {"Content-Encoding": "deflate"}, zlib.compress(b'{"ok": true}')
    return 200, {}, {"path": seen.path, "auth": seen.headers.get("authorization")}


def tool_for(server, url, **entry):
    spec = PluginSpec.from_config({"id": "items", "url": f"{server.url}{url}", **entry})
    return PluginTool(spec, HostAllowlist(["127.0.0.1"], LOOPBACK))


@pytest.mark.parametrize("value", ["..", "../..", ".", "%2e%2e", "a/../..", "..%2F"])
async def test_an_argument_cannot_climb_out_of_the_url_template(
    loopback, context, monkeypatch, value
):
    monkeypatch.setenv("KIT_TEST_ITEMS_TOKEN", "tok-items")
    server = loopback(items)
    tool = tool_for(server, "/api/items/{id}/details", auth={"env": "KIT_TEST_ITEMS_TOKEN"})
    result = await tool.call({"id": value}, context)
    await tool.aclose()
    (seen,) = server.seen
    assert seen.path.startswith("/api/items/") and seen.path.endswith("/details")
    assert seen.path.count("/") == 4  # the argument stayed one path segment
    assert "leak" not in result.output


async def test_a_gzip_bomb_is_cut_off_as_it_is_read(loopback, context):
    server = loopback(items)
    tool = tool_for(server, "/bomb", max_output_chars=1000)
    bomb()  # made before measuring: the server's copy is not the tool's
    tracemalloc.start()
    try:
        result = await tool.call({}, context)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await tool.aclose()
    assert result.output.startswith("\0" * 1000 + "\n[output truncated: ")
    # 130 MB once decompressed; reading it whole would peak far above this
    assert peak < 5_000_000, f"peak {peak:,} bytes"


async def test_deflate_answers_are_decoded(loopback, context):
    server = loopback(items)
    tool = tool_for(server, "/deflate")
    result = await tool.call({}, context)
    await tool.aclose()
    assert json.loads(result.output) == {"ok": True}


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        pytest.param("http://localhost:{port}/x", True, id="name-resolving-to-loopback"),
        pytest.param("http://127.0.0.1:{port}/x", False, id="loopback-literal"),
        pytest.param("http://[::ffff:127.0.0.1]:{port}/x", False, id="ipv4-mapped-loopback"),
        pytest.param("http://169.254.169.254/latest/meta-data", False, id="metadata"),
        pytest.param("http://100.100.100.200/latest/meta-data", False, id="alibaba-metadata"),
        pytest.param("http://10.0.0.1/x", False, id="private"),
        pytest.param("http://0.0.0.0:{port}/x", False, id="unspecified"),
    ],
)
async def test_private_addresses_are_refused_even_when_the_name_is_allowed(
    loopback, context, url, resolved
):
    server = loopback(items)
    port = server.url.rsplit(":", 1)[1]
    target = url.format(port=port)
    host = httpx.URL(target).host
    spec = PluginSpec.from_config({"id": "p", "url": target})
    tool = PluginTool(spec, HostAllowlist([host]))  # the name is allowed, the address is not
    result = await tool.call({}, context)
    await tool.aclose()
    assert result.is_error
    assert "is not a public address" in result.output
    assert ("resolved to 127.0.0.1" in result.output) is resolved
    assert server.seen == []


async def test_allowed_private_networks_opt_in_is_explicit(loopback, context):
    server = loopback(items)
    port = server.url.rsplit(":", 1)[1]
    entry = {"id": "p", "url": f"http://localhost:{port}/x"}
    refused = build_tools({"plugins": [entry], "allowed_hosts": ["localhost"]})
    allowed = build_tools(
        {
            "plugins": [entry],
            "allowed_hosts": ["localhost"],
            "allowed_private_networks": ["127.0.0.0/8", "::1/128"],
        }
    )
    try:
        assert (await refused.resolve({"type": "p"}).call({}, context)).is_error
        answer = await allowed.resolve({"type": "p"}).call({}, context)
        assert json.loads(answer.output)["path"] == "/x"
        assert server.seen[0].headers["host"] == f"localhost:{port}"
    finally:
        await refused.aclose()
        await allowed.aclose()


# -- tokens: never stored, never returned ---------------------------------------------------

TOKEN = "plugin-sentinel-9f3c1d7e"


@pytest.fixture
async def app(tmp_path, monkeypatch):
    """The server with two plug-ins, one reading its credential from the environment (the
    ``http`` fixture of tests/server/conftest.py talks to it)."""
    monkeypatch.setenv("KIT_TEST_WEATHER_TOKEN", TOKEN)
    weather = {"id": "weather", "url": "http://127.0.0.1:9/w"}
    plugins = [{**weather, "auth": {"env": "KIT_TEST_WEATHER_TOKEN"}}]
    plugins.append({"id": "open_data", "url": "http://127.0.0.1:9/o"})
    tools = build_tools({"plugins": plugins, "allowed_hosts": ["127.0.0.1"]})
    application = create_app(ServerConfig(database=tmp_path / "kit.db", tools=tools))
    async with application.router.lifespan_context(application):
        yield application
    await tools.aclose()


def plugin_tool(token):
    return {"type": "weather", "auth": {"type": "user_http", "user_token": token}}


def stored_bytes(tmp_path):
    return b"".join(p.read_bytes() for p in tmp_path.glob("kit.db*"))


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
async def test_a_plugin_token_is_stored_and_returned_only_as_a_reference(http, tmp_path, prefix):
    created = await http.post(
        f"{prefix}/assistants", json={"model": "m", "tools": [plugin_tool(TOKEN)]}
    )
    assert created.status_code == 200, created.text
    assistant = created.json()
    listed = await http.get(f"{prefix}/assistants")
    updated = await http.post(
        f"{prefix}/assistants/{assistant['id']}", json={"tools": [plugin_tool(TOKEN)]}
    )
    for response in (created, listed, updated):
        assert TOKEN not in response.text
    assert assistant["tools"] == [plugin_tool("${KIT_TEST_WEATHER_TOKEN}")]
    assert TOKEN.encode() not in stored_bytes(tmp_path)


async def test_a_token_the_server_does_not_hold_is_refused(http, tmp_path):
    other = "someone-elses-token-5b2a"
    refused = await http.post("/v1/assistants", json={"model": "m", "tools": [plugin_tool(other)]})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "plug-in 'weather': tokens are not stored; put the token in the server's environment "
        "variable KIT_TEST_WEATHER_TOKEN and send 'auth.user_token' as "
        "'${KIT_TEST_WEATHER_TOKEN}'."
    )
    assert other not in refused.text
    assert other.encode() not in stored_bytes(tmp_path)


@pytest.mark.parametrize("kind", ["open_data", "not_on_this_server"])
async def test_the_token_of_a_plugin_that_takes_none_is_dropped(http, tmp_path, kind):
    other = "someone-elses-token-5b2a"
    tool = {"type": kind, "auth": {"type": "user_http", "user_token": other}}
    created = await http.post("/v1/assistants", json={"model": "m", "tools": [tool]})
    assert created.status_code == 200, created.text
    assert created.json()["tools"][0]["auth"] == {"type": "user_http", "user_token": NOT_STORED}
    assert other.encode() not in stored_bytes(tmp_path)


async def test_a_run_with_its_own_tools_stores_no_token(http, tmp_path):
    assistant = (await http.post("/v1/assistants", json={"model": "m"})).json()
    thread = (await http.post("/v1/threads", json={})).json()
    run = await http.post(
        f"/v1/threads/{thread['id']}/runs",
        json={"assistant_id": assistant["id"], "tools": [plugin_tool(TOKEN)]},
    )
    assert run.status_code == 200, run.text
    assert TOKEN not in run.text
    assert TOKEN.encode() not in stored_bytes(tmp_path)


async def test_a_token_stored_before_sealing_is_never_returned(tmp_path, monkeypatch):
    # a row as the server wrote it before plug-in tokens were sealed
    store = open_store(tmp_path / "kit.db")
    async with store.lifespan():
        record = AssistantRecord(id=new_id(), created_at=now_ms(), model="m")
        await store.insert_assistant(replace(record, tools=[plugin_tool(TOKEN)]))
    monkeypatch.setenv("KIT_TEST_WEATHER_TOKEN", TOKEN)
    app = create_app(ServerConfig(database=tmp_path / "kit.db"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kit",
            headers={"Authorization": "Bearer k"},
        ) as http,
    ):
        listed = await http.get("/v1/assistants")
        wire_id = listed.json()["data"][0]["id"]
        for path in ("/api/v1/assistants", f"/v1/assistants/{wire_id}"):
            response = await http.get(path)
            assert response.status_code == 200
            assert TOKEN not in listed.text + response.text
            assert NOT_STORED in response.text
        thread = (await http.post("/v1/threads", json={})).json()
        run = await http.post(f"/v1/threads/{thread['id']}/runs", json={"assistant_id": wire_id})
        assert run.status_code == 200, run.text
        assert TOKEN not in run.text


async def test_tokens_an_older_store_holds_are_forgotten_when_it_is_opened(tmp_path):
    # an older store: a token in an assistant, a run and the run's snapshot in the event log
    path = tmp_path / "kit.db"
    store = open_store(path)
    async with store.lifespan():
        record = AssistantRecord(id=new_id(), created_at=now_ms(), model="m")
        await store.insert_assistant(replace(record, tools=[plugin_tool(TOKEN)]))
    tools = json.dumps([plugin_tool(TOKEN), plugin_tool("${KIT_TEST_WEATHER_TOKEN}")])
    db = sqlite3.connect(path, isolation_level=None)
    columns = "id, thread_id, assistant_id, created_at, status, model, instructions, tools"
    db.execute(
        f"INSERT INTO runs ({columns}, file_ids, metadata, parallel_tool_calls, model_calls)"
        " VALUES ('run_1', 't', 'a', 1, 'completed', 'm', '', ?, '[]', '{}', 1, 0)",
        (tools,),
    )
    event = json.dumps({"kind": "run", "record": {"id": "run_1", "tools": json.loads(tools)}})
    db.execute(
        "INSERT INTO run_events (run_id, thread_id, created_at, event, data)"
        " VALUES ('run_1', 't', 1, 'thread.run.created', ?)",
        (event,),
    )
    db.execute("DELETE FROM schema_migrations WHERE name = 'm005_plugin_tokens_not_stored'")
    db.close()
    assert TOKEN.encode() in stored_bytes(tmp_path)

    async with open_store(path).lifespan():
        pass
    assert TOKEN.encode() not in stored_bytes(tmp_path)
    db = sqlite3.connect(path)
    (run_tools,) = db.execute("SELECT tools FROM runs").fetchone()
    (data,) = db.execute("SELECT data FROM run_events").fetchone()
    db.close()
    kept = [plugin_tool(NOT_STORED), plugin_tool("${KIT_TEST_WEATHER_TOKEN}")]
    assert json.loads(run_tools) == kept
    assert json.loads(data)["record"]["tools"] == kept
