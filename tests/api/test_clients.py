"""Both dialect clients against the embedded server, in-process through ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from assistant_kit.api import (
    NOT_GIVEN,
    AssistantClient,
    AssistantParams,
    DashScopeClient,
    MessageParams,
    OpenAIClient,
    client_for,
    in_process,
)
from assistant_kit.errors import ApiError
from assistant_kit.server.app import ServerConfig, create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    application = create_app(ServerConfig(database=tmp_path / "kit.db"))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(params=["openai", "dashscope"])
async def client(app: Starlette, request: pytest.FixtureRequest) -> AsyncIterator[AssistantClient]:
    async with in_process(app, dialect=request.param, lifespan=False) as c:
        yield c


async def test_in_process_opens_the_store_for_its_lifetime(tmp_path: Path) -> None:
    app = create_app(ServerConfig(database=tmp_path / "kit.db"))
    async with in_process(app, dialect="dashscope") as client:
        assert isinstance(client, DashScopeClient)
        created = await client.create_assistant(AssistantParams(model="m"))
        assert (await client.get_assistant(created.id)).model == "m"
    assert (tmp_path / "kit.db").exists()
    with pytest.raises(RuntimeError, match="not open"):
        _ = app.state.context.store.db


async def test_assistant_crud(client: AssistantClient) -> None:
    created = await client.create_assistant(
        AssistantParams(
            model="qwen-max",
            name="Bot",
            instructions="Be brief.",
            tools=[{"type": "code_interpreter"}],
            metadata={"team": "a"},
            temperature=0.5,
        )
    )
    assert created.id.startswith("asst_")
    assert created.name == "Bot" and created.tools == ({"type": "code_interpreter"},)
    assert created.temperature == 0.5
    assert abs(created.created_at - (await client.get_assistant(created.id)).created_at) < 1000

    updated = await client.update_assistant(created.id, AssistantParams(description="d", name=None))
    assert updated.description == "d" and updated.name is None
    assert updated.instructions == "Be brief." and updated.metadata == {"team": "a"}

    await client.delete_assistant(created.id)
    with pytest.raises(ApiError) as info:
        await client.get_assistant(created.id)
    assert info.value.status == 404
    assert info.value.dialect == client.dialect
    assert info.value.request_id


async def test_list_all_assistants_walks_every_page(client: AssistantClient) -> None:
    made = [(await client.create_assistant(AssistantParams(model=f"m{i}"))).id for i in range(45)]
    page = await client.list_assistants(limit=20)
    assert len(page.data) == 20 and page.has_more
    assert page.first_id == made[-1]
    everyone = await client.list_all_assistants(order="asc")
    assert [a.id for a in everyone] == made
    earlier = await client.list_assistants(limit=20, before=made[-1], order="asc")
    assert [a.id for a in earlier.data] == made[24:44]


async def test_threads_and_messages(client: AssistantClient) -> None:
    thread = await client.create_thread(
        messages=[MessageParams("hello"), MessageParams("hi there", role="assistant")],
        metadata={"k": "v"},
    )
    assert thread.metadata == {"k": "v"}
    message = await client.create_message(thread.id, MessageParams("how are you?"))
    assert message.text == "how are you?" and message.role == "user"
    assert message.assistant_id is None and message.run_id is None

    texts = [m.text for m in await client.list_all_messages(thread.id)]
    assert texts == ["hello", "hi there", "how are you?"]
    newest = await client.list_messages(thread.id, limit=1)
    assert newest.data[0].id == message.id and newest.has_more

    tagged = await client.update_message(thread.id, message.id, metadata={"seen": "yes"})
    assert tagged.metadata == {"seen": "yes"}
    assert (await client.get_message(thread.id, message.id)).metadata == {"seen": "yes"}
    assert (await client.update_thread(thread.id, metadata={})).metadata == {}

    await client.delete_thread(thread.id)
    with pytest.raises(ApiError) as info:
        await client.get_thread(thread.id)
    assert info.value.status == 404


async def test_validation_errors_carry_code_and_param(app: Starlette) -> None:
    async with in_process(app, dialect="openai", lifespan=False) as client:
        with pytest.raises(ApiError) as info:
            await client.create_assistant(AssistantParams(name="no model"))
    assert info.value.status == 400
    assert info.value.code == "missing_required_parameter"
    assert info.value.param == "model"


async def test_dashscope_errors_carry_its_codes(app: Starlette) -> None:
    async with in_process(app, dialect="dashscope", lifespan=False) as client:
        with pytest.raises(ApiError) as info:
            await client.create_assistant(AssistantParams(model="m", temperature=9))
    assert (info.value.status, info.value.code) == (400, "InvalidParameter")
    assert info.value.request_id


async def test_what_one_dialect_creates_the_other_lists(app: Starlette) -> None:
    async with (
        in_process(app, dialect="dashscope", lifespan=False) as ds,
        in_process(app, dialect="openai", lifespan=False) as oa,
    ):
        assert isinstance(oa, OpenAIClient)
        thread = await ds.create_thread(messages=[MessageParams("from dashscope")])
        [seen] = await oa.list_all_messages(thread.id)
        assert seen.id.startswith("msg_") and seen.text == "from dashscope"
        [original] = await ds.list_all_messages(thread.id)
        assert original.created_at - seen.created_at < 1000


def test_not_given_is_falsy_and_left_out() -> None:
    assert not NOT_GIVEN
    assert AssistantParams(model="m", name=None).given() == {"model": "m", "name": None}


async def test_client_for_names_the_dialects() -> None:
    async with httpx.AsyncClient() as http:
        assert isinstance(client_for("openai", http), OpenAIClient)
        assert isinstance(client_for("dashscope", http), DashScopeClient)
        with pytest.raises(ValueError, match="unknown dialect"):
            client_for("bedrock", http)
