"""The official ``openai`` SDK (1.109.1) drives ``kit serve`` through ``client.beta``."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI


def test_assistant_create_retrieve_update_list_delete(openai_sdk: OpenAI) -> None:
    assistant = openai_sdk.beta.assistants.create(
        model="qwen-max",
        name="Art Maestro",
        instructions="Talk about painting.",
        tools=[
            {"type": "code_interpreter"},
            {
                "type": "function",
                "function": {
                    "name": "get_artwork",
                    "description": "Look up an artwork",
                    "parameters": {"type": "object", "properties": {"title": {"type": "string"}}},
                },
            },
        ],
        metadata={"team": "art"},
        temperature=0.7,
    )
    assert assistant.id.startswith("asst_")
    assert assistant.tools[1].function.name == "get_artwork"
    assert assistant._request_id and assistant._request_id.startswith("req_")

    fetched = openai_sdk.beta.assistants.retrieve(assistant.id)
    assert fetched.name == "Art Maestro" and fetched.metadata == {"team": "art"}
    assert fetched.created_at == assistant.created_at

    updated = openai_sdk.beta.assistants.update(assistant.id, instructions="Be brief.")
    assert updated.instructions == "Be brief." and updated.name == "Art Maestro"

    ids = [a.id for a in openai_sdk.beta.assistants.list(limit=100)]
    assert assistant.id in ids

    deleted = openai_sdk.beta.assistants.delete(assistant.id)
    assert deleted.deleted and deleted.id == assistant.id
    with pytest.raises(openai.NotFoundError) as info:
        openai_sdk.beta.assistants.retrieve(assistant.id)
    assert info.value.body["message"] == f"No assistant found with id '{assistant.id}'."


def test_threads_and_messages(openai_sdk: OpenAI) -> None:
    thread = openai_sdk.beta.threads.create(
        messages=[{"role": "user", "content": "Who painted Starry Night?"}],
        metadata={"user": "u1"},
    )
    assert thread.metadata == {"user": "u1"}
    assert openai_sdk.beta.threads.retrieve(thread.id).id == thread.id
    assert openai_sdk.beta.threads.update(thread.id, metadata={"user": "u2"}).metadata == {
        "user": "u2"
    }

    msg = openai_sdk.beta.threads.messages.create(
        thread.id, role="user", content=[{"type": "text", "text": "And Guernica?"}]
    )
    assert msg.id.startswith("msg_")
    assert msg.content[0].text.value == "And Guernica?"
    assert msg.content[0].text.annotations == []
    got = openai_sdk.beta.threads.messages.retrieve(msg.id, thread_id=thread.id)
    assert got.content[0].text.value == "And Guernica?"
    tagged = openai_sdk.beta.threads.messages.update(
        msg.id, thread_id=thread.id, metadata={"lang": "en"}
    )
    assert tagged.metadata == {"lang": "en"}

    listed = openai_sdk.beta.threads.messages.list(thread.id, order="asc")
    assert [m.content[0].text.value for m in listed] == [
        "Who painted Starry Night?",
        "And Guernica?",
    ]

    assert openai_sdk.beta.threads.delete(thread.id).deleted
    with pytest.raises(openai.NotFoundError):
        openai_sdk.beta.threads.retrieve(thread.id)


def test_auto_pagination_and_before_over_45_messages(openai_sdk: OpenAI) -> None:
    thread = openai_sdk.beta.threads.create()
    made = [
        openai_sdk.beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id
        for i in range(45)
    ]
    first = openai_sdk.beta.threads.messages.list(thread.id, limit=20)
    assert len(first.data) == 20 and first.has_more
    assert first.data[0].id == made[-1]

    everything = [m.id for m in openai_sdk.beta.threads.messages.list(thread.id, limit=20)]
    assert everything == list(reversed(made))  # three requests: 20 + 20 + 5

    pages = list(openai_sdk.beta.threads.messages.list(thread.id, limit=20).iter_pages())
    assert [len(p.data) for p in pages] == [20, 20, 5]

    after = openai_sdk.beta.threads.messages.list(thread.id, limit=20, after=made[30], order="asc")
    assert [m.id for m in after.data] == made[31:45] and not after.has_more
    before = openai_sdk.beta.threads.messages.list(thread.id, limit=20, before=made[30])
    assert [m.id for m in before.data] == list(reversed(made[31:45]))
    before_asc = openai_sdk.beta.threads.messages.list(
        thread.id, limit=20, before=made[30], order="asc"
    )
    assert [m.id for m in before_asc.data] == made[10:30] and before_asc.has_more


def test_sdk_errors_carry_the_envelope(openai_sdk: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_sdk.beta.assistants.create(model="m", metadata={f"k{i}": "v" for i in range(17)})
    assert info.value.param == "metadata" and info.value.code == "invalid_value"
    assert info.value.type == "invalid_request_error"

    with pytest.raises(openai.BadRequestError) as missing:
        openai_sdk.beta.threads.messages.create("thread_x", role="user", content=[])
    assert missing.value.param == "content"

    with pytest.raises(openai.NotFoundError):
        openai_sdk.beta.threads.messages.list("thread_3f2a91c4-0000-4000-8000-000000000000")


def test_a_wrong_key_is_an_authentication_error(kit_server) -> None:
    client = OpenAI(base_url=kit_server.openai_url, api_key="wrong", max_retries=0)
    with client, pytest.raises(openai.AuthenticationError) as info:
        client.beta.assistants.list()
    assert info.value.code == "invalid_api_key"
