"""Assistants, threads and messages through both dialects of one in-process app."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.anyio

OA = "/v1"
DS = "/api/v1"


async def test_openai_assistant_lifecycle(http: httpx.AsyncClient) -> None:
    created = await http.post(
        f"{OA}/assistants",
        json={"model": "qwen-max", "name": "n", "tools": [{"type": "code_interpreter"}]},
    )
    assert created.status_code == 200
    body = created.json()
    assert body["id"].startswith("asst_")
    assert body["object"] == "assistant"
    assert abs(body["created_at"] - time.time()) < 60  # seconds
    assert body["metadata"] == {} and body["description"] is None
    assert created.headers["openai-poll-after-ms"] == "25"
    assert created.headers["x-request-id"].startswith("req_")

    aid = body["id"]
    updated = await http.post(f"{OA}/assistants/{aid}", json={"name": "m", "metadata": {"k": "v"}})
    assert updated.json()["name"] == "m" and updated.json()["model"] == "qwen-max"
    patched = await http.patch(f"{OA}/assistants/{aid}", json={"description": "d"})
    assert patched.json()["description"] == "d" and patched.json()["metadata"] == {"k": "v"}
    assert (await http.get(f"{OA}/assistants/{aid}")).json() == patched.json()

    deleted = await http.delete(f"{OA}/assistants/{aid}")
    assert deleted.json() == {"id": aid, "object": "assistant.deleted", "deleted": True}
    assert (await http.get(f"{OA}/assistants/{aid}")).status_code == 404


async def test_dashscope_assistant_lifecycle(http: httpx.AsyncClient) -> None:
    sdk_body = {"model": "qwen-max", "name": "n", "file_ids": [], "metadata": None}
    created = await http.post(f"{DS}/assistants", json=sdk_body)
    assert created.status_code == 200
    body = created.json()
    assert body["request_id"]
    assert len(str(body["created_at"])) == 13  # ms
    assert body["metadata"] == {} and body["top_k"] is None

    aid = body["id"]
    await http.post(f"{DS}/assistants/{aid}", json={"metadata": {"k": "v"}, "file_ids": ["f1"]})
    # what Assistants.update(id, name="x") sends: metadata null and file_ids [] mean unchanged
    updated = await http.post(
        f"{DS}/assistants/{aid}", json={"name": "x", "file_ids": [], "metadata": None}
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "x"
    assert updated.json()["metadata"] == {"k": "v"}
    assert updated.json()["file_ids"] == ["f1"]

    deleted = await http.delete(f"{DS}/assistants/{aid}")
    assert deleted.json()["object"] == "assistant.deleted" and deleted.json()["deleted"] is True
    assert deleted.json()["request_id"]


async def test_an_object_created_in_one_dialect_is_visible_in_the_other(
    http: httpx.AsyncClient,
) -> None:
    thread = (await http.post(f"{DS}/threads", json={"metadata": {"a": "1"}})).json()
    message = (
        await http.post(f"{DS}/threads/{thread['id']}/messages", json={"content": "hi"})
    ).json()
    assert message["id"].startswith("message_")
    uid = message["id"].removeprefix("message_")

    seen = (await http.get(f"{OA}/threads/{thread['id']}/messages/msg_{uid}")).json()
    assert seen["id"] == f"msg_{uid}"
    assert seen["created_at"] == message["created_at"] // 1000
    assert seen["content"][0]["text"]["value"] == "hi"
    assert seen["assistant_id"] is None and message["assistant_id"] == ""
    # either prefix is accepted by either dialect
    again = await http.get(f"{DS}/threads/{thread['id']}/messages/msg_{uid}")
    assert again.json()["id"] == message["id"]
    assert (await http.get(f"{OA}/threads/{thread['id']}")).json()["metadata"] == {"a": "1"}


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        pytest.param(b'""', {"content-type": "application/json; charset=utf-8"}, id="sdk-empty"),
        pytest.param(b"", {}, id="no-body"),
        pytest.param(b"{}", {"content-type": "application/json"}, id="empty-object"),
    ],
)
async def test_dashscope_thread_create_accepts_what_the_sdk_sends(
    http: httpx.AsyncClient, content: bytes, headers: dict[str, str]
) -> None:
    response = await http.post(f"{DS}/threads", content=content, headers=headers)
    assert response.status_code == 200
    assert response.json()["object"] == "thread" and response.json()["metadata"] == {}


async def test_thread_lifecycle_with_initial_messages(http: httpx.AsyncClient) -> None:
    created = await http.post(
        f"{OA}/threads",
        json={
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": [{"type": "text", "text": "second"}]},
            ],
            "metadata": {"k": "v"},
        },
    )
    tid = created.json()["id"]
    listed = (await http.get(f"{OA}/threads/{tid}/messages", params={"order": "asc"})).json()
    assert [m["content"][0]["text"]["value"] for m in listed["data"]] == ["first", "second"]
    assert listed["data"][1]["content"][0]["text"]["annotations"] == []

    updated = await http.post(f"{OA}/threads/{tid}", json={"metadata": {"k": "w"}})
    assert updated.json()["metadata"] == {"k": "w"}
    unchanged = await http.post(f"{DS}/threads/{tid}", json={"metadata": None})
    assert unchanged.json()["metadata"] == {"k": "w"}

    deleted = await http.delete(f"{OA}/threads/{tid}")
    assert deleted.json() == {"id": tid, "object": "thread.deleted", "deleted": True}
    assert (await http.get(f"{OA}/threads/{tid}")).status_code == 404
    assert (await http.get(f"{OA}/threads/{tid}/messages")).status_code == 404


async def test_message_update_and_delete(http: httpx.AsyncClient) -> None:
    tid = (await http.post(f"{OA}/threads", json={})).json()["id"]
    mid = (
        await http.post(f"{OA}/threads/{tid}/messages", json={"role": "user", "content": "x"})
    ).json()["id"]
    updated = await http.post(f"{OA}/threads/{tid}/messages/{mid}", json={"metadata": {"a": "b"}})
    assert updated.json()["metadata"] == {"a": "b"}
    assert updated.json()["content"][0]["text"]["value"] == "x"
    deleted = await http.delete(f"{OA}/threads/{tid}/messages/{mid}")
    assert deleted.json()["object"] == "thread.message.deleted"
    assert (await http.get(f"{OA}/threads/{tid}/messages/{mid}")).status_code == 404


async def test_message_content_as_parts_keeps_images(http: httpx.AsyncClient) -> None:
    tid = (await http.post(f"{OA}/threads", json={})).json()["id"]
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
    ]
    message = (
        await http.post(f"{OA}/threads/{tid}/messages", json={"role": "user", "content": parts})
    ).json()
    assert message["content"][0] == {"type": "text", "text": {"value": "look", "annotations": []}}
    assert message["content"][1] == parts[1]


@pytest.mark.parametrize("base", [OA, DS])
async def test_messages_paginate_with_after_and_before(http: httpx.AsyncClient, base: str) -> None:
    tid = (await http.post(f"{base}/threads", json={})).json()["id"]
    ids = []
    for i in range(45):
        r = await http.post(f"{base}/threads/{tid}/messages", json={"content": str(i)})
        ids.append(r.json()["id"])
    newest_first = list(reversed(ids))

    seen, after = [], None
    while True:
        params = {"limit": 20, **({"after": after} if after else {})}
        page = (await http.get(f"{base}/threads/{tid}/messages", params=params)).json()
        assert page["object"] == "list"
        assert page["first_id"] == page["data"][0]["id"]
        assert page["last_id"] == page["data"][-1]["id"]
        seen += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == newest_first

    page = (
        await http.get(
            f"{base}/threads/{tid}/messages", params={"limit": 20, "before": newest_first[30]}
        )
    ).json()
    assert [m["id"] for m in page["data"]] == newest_first[10:30]
    assert page["has_more"] is True

    asc = (await http.get(f"{base}/threads/{tid}/messages", params={"order": "asc"})).json()
    assert [m["id"] for m in asc["data"]] == ids[:20]


async def test_empty_lists_have_null_cursors(http: httpx.AsyncClient) -> None:
    tid = (await http.post(f"{OA}/threads", json={})).json()["id"]
    page = (await http.get(f"{OA}/threads/{tid}/messages")).json()
    assert page == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


async def test_messages_filter_by_run_id(http: httpx.AsyncClient) -> None:
    tid = (await http.post(f"{OA}/threads", json={})).json()["id"]
    await http.post(f"{OA}/threads/{tid}/messages", json={"role": "user", "content": "x"})
    run_id = "run_3f2a91c4-0000-4000-8000-000000000000"
    page = (await http.get(f"{OA}/threads/{tid}/messages", params={"run_id": run_id})).json()
    assert page["data"] == []


async def test_unknown_fields_are_tolerated(http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{OA}/assistants", json={"model": "m", "reasoning_effort": "low", "x_future": 1}
    )
    assert response.status_code == 200


async def test_concurrent_requests_all_land(http: httpx.AsyncClient) -> None:
    import asyncio

    tid = (await http.post(f"{OA}/threads", json={})).json()["id"]
    responses = await asyncio.gather(
        *(
            http.post(f"{OA if i % 2 else DS}/threads/{tid}/messages", json={"content": str(i)})
            for i in range(60)
        ),
        *(http.post(f"{OA}/assistants", json={"model": f"m{i}"}) for i in range(60)),
    )
    assert {r.status_code for r in responses} == {200}
    page = (await http.get(f"{OA}/threads/{tid}/messages", params={"limit": 100})).json()
    assert len(page["data"]) == 60
    assert len({m["id"] for m in page["data"]}) == 60
