"""The official ``dashscope`` SDK (2.0.2) drives ``kit serve``, unmodified."""

from __future__ import annotations

from types import ModuleType


def test_assistant_create_retrieve_update_list_delete(dashscope_sdk: ModuleType) -> None:
    Assistants = dashscope_sdk.Assistants
    assistant = Assistants.create(
        model="qwen-max",
        name="智能小助手",
        description="A helper",
        instructions="You are helpful.",
        tools=[
            {"type": "code_interpreter"},
            {
                "type": "function",
                "function": {
                    "name": "big_add",
                    "description": "Add two numbers",
                    "parameters": {"type": "object", "properties": {}},
                },
            },
        ],
        metadata={"team": "a"},
        top_k=10,
    )
    assert assistant.status_code == 200
    assert assistant.id.startswith("asst_")
    assert assistant.name == "智能小助手" and assistant.top_k == 10
    assert assistant.request_id
    assert len(str(assistant.created_at)) == 13

    fetched = Assistants.retrieve(assistant.id)
    assert fetched.status_code == 200 and fetched.instructions == "You are helpful."

    # the SDK sends {"name": ..., "file_ids": [], "metadata": null}: metadata stays
    updated = Assistants.update(assistant.id, name="renamed")
    assert updated.status_code == 200
    assert updated.name == "renamed" and updated.metadata == {"team": "a"}
    assert updated.model == "qwen-max"

    listed = Assistants.list(limit=100)
    assert listed.status_code == 200
    assert assistant.id in [a.id for a in listed.data]

    deleted = Assistants.delete(assistant.id)
    assert deleted.status_code == 200 and deleted.deleted is True
    missing = Assistants.retrieve(assistant.id)
    assert missing.status_code == 404 and missing.code == "NotFound"


def test_threads_and_messages(dashscope_sdk: ModuleType) -> None:
    Threads, Messages = dashscope_sdk.Threads, dashscope_sdk.Messages
    empty = Threads.create()  # body ""
    assert empty.status_code == 200 and empty.id.startswith("thread_")
    thread = Threads.create(
        messages=[{"role": "user", "content": "你是谁"}], metadata={"user": "u1"}
    )
    assert thread.status_code == 200 and thread.metadata == {"user": "u1"}

    msg = Messages.create(thread.id, content="画一幅画")
    assert msg.status_code == 200
    assert msg.id.startswith("message_")
    assert msg.content[0].text.value == "画一幅画"
    assert msg.role == "user" and msg.thread_id == thread.id

    got = Messages.retrieve(msg.id, thread_id=thread.id)
    assert got.status_code == 200 and got.content[0].text.value == "画一幅画"
    tagged = Messages.update(msg.id, thread_id=thread.id, metadata={"k": "v"})
    assert tagged.status_code == 200 and tagged.metadata == {"k": "v"}

    msgs = Messages.list(thread.id)
    assert msgs.status_code == 200
    texts = [m.content[0].text.value for m in msgs.data[::-1]]  # the cookbook's reversal
    assert texts == ["你是谁", "画一幅画"]

    assert Threads.retrieve(thread.id).status_code == 200
    assert Threads.update(thread.id, metadata={"user": "u2"}).metadata == {"user": "u2"}
    deleted = Threads.delete(thread.id)
    assert deleted.status_code == 200 and deleted.deleted is True
    assert Threads.retrieve(thread.id).status_code == 404


def test_pagination_over_45_assistants_with_after_and_before(dashscope_sdk: ModuleType) -> None:
    Assistants = dashscope_sdk.Assistants
    marker = {"batch": "ds-45"}
    made = [Assistants.create(model=f"m{i}", metadata=marker).id for i in range(45)]

    def ours(page) -> list[str]:
        return [a.id for a in page.data if a.id in set(made)]

    seen: list[str] = []
    page = Assistants.list(limit=20, order="asc", after=made[0])
    seen = [made[0], *ours(page)]
    while page.has_more:
        page = Assistants.list(limit=20, order="asc", after=page.last_id)
        assert page.status_code == 200
        seen += ours(page)
    assert seen == made

    back = Assistants.list(limit=20, order="asc", before=made[44])
    assert [a.id for a in back.data] == made[24:44] and back.has_more
    assert back.first_id == made[24] and back.last_id == made[43]
    newest = Assistants.list(limit=20, before=made[0])
    assert [a.id for a in newest.data][-1] == made[1]


def test_bad_requests_come_back_as_error_objects(dashscope_sdk: ModuleType) -> None:
    bad = dashscope_sdk.Assistants.create(model="m", temperature=5.0)
    assert bad.status_code == 400 and bad.code == "InvalidParameter"
    assert "temperature" in bad.message and bad.request_id
    missing = dashscope_sdk.Messages.create("thread_nope", content="x")
    assert missing.status_code == 404 and missing.code == "NotFound"


def test_a_wrong_key_is_refused(dashscope_sdk: ModuleType) -> None:
    refused = dashscope_sdk.Assistants.list(api_key="wrong")
    assert refused.status_code == 401 and refused.code == "InvalidApiKey"


def test_objects_are_shared_across_dialects(dashscope_sdk: ModuleType, openai_sdk) -> None:
    thread = dashscope_sdk.Threads.create(messages=[{"role": "user", "content": "from ds"}])
    [seen] = openai_sdk.beta.threads.messages.list(thread.id)
    assert seen.content[0].text.value == "from ds" and seen.id.startswith("msg_")
    again = dashscope_sdk.Messages.retrieve(seen.id, thread_id=thread.id)
    assert again.status_code == 200 and again.id == "message_" + seen.id.removeprefix("msg_")

    asst = openai_sdk.beta.assistants.create(model="qwen-plus", name="shared")
    ds_view = dashscope_sdk.Assistants.retrieve(asst.id)
    assert ds_view.name == "shared" and ds_view.created_at // 1000 == asst.created_at
