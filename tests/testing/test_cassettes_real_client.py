"""Record the real AssistantClient against the real embedded server, then replay with no server:
the records come back equal and the key the server demanded is in no cassette."""

from __future__ import annotations

import httpx
import pytest

from assistant_kit.api.base import AssistantParams, MessageParams
from assistant_kit.api.registry import client_for
from assistant_kit.catalog import WIRE_DIALECTS
from assistant_kit.server.app import ServerConfig, create_app
from assistant_kit.testing.cassettes import CassetteStore, spec_digest
from assistant_kit.testing.secrets import Scrubber

pytestmark = pytest.mark.anyio

SENTINEL = "sk-SENTINEL-real-server-31c0"
TEST_ID = "order-desk::looks up an order"


async def conversation(client, transport):
    transport.at_turn("setup")
    bot = await client.create_assistant(
        AssistantParams(model="qwen-plus", name="Order Desk", instructions="Be brief.")
    )
    thread = await client.create_thread(metadata={"kit_test": TEST_ID})
    transport.at_turn(0)
    message = await client.create_message(thread.id, MessageParams("Where is order 42?"))
    listed = await client.list_all_messages(thread.id, order="asc")
    transport.at_turn("teardown")
    await client.delete_thread(thread.id)
    await client.delete_assistant(bot.id)
    return bot, thread, message, listed


@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_real_client_records_and_replays_without_a_server(tmp_path, dialect):
    digest = spec_digest({"name": "order-desk"}, dialect)
    store = CassetteStore(tmp_path, Scrubber([SENTINEL]))
    cassette = store.new(TEST_ID, digest)
    app = create_app(ServerConfig(database=tmp_path / "kit.db", api_keys=(SENTINEL,)))
    base_url = f"http://kit.local{WIRE_DIALECTS[dialect].base_path}"
    async with app.router.lifespan_context(app):
        recorder = cassette.recorder(httpx.ASGITransport(app=app), owns_inner=True)
        async with httpx.AsyncClient(base_url=base_url, transport=recorder) as http:
            live = await conversation(client_for(dialect, http, api_key=SENTINEL), recorder)
    path = store.save(cassette)
    del app  # no server from here on

    text = path.read_text(encoding="utf-8")
    assert SENTINEL not in text
    assert '"authorization": "[REDACTED]"' in text
    assert {ex.turn for ex in cassette.exchanges} == {"setup", 0, "teardown"}

    replayer = store.load(TEST_ID, digest).replayer()
    async with httpx.AsyncClient(base_url=base_url, transport=replayer) as http:
        replayed = await conversation(client_for(dialect, http, api_key="another-key"), replayer)
    assert replayed == live
    assert replayed[3][0].text == "Where is order 42?"
