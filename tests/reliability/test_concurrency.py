"""Concurrent clients on a real `kit serve`: 20 clients on 20 threads at once keep every thread's
messages whole and in order; two runs racing on one thread: exactly one wins, the other gets
the dialect's error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import jsonschema
import pytest
from kit_fuzz_http import error_schemas
from kit_processes import KitServe
from kit_projects import texts, thread_messages, wait_runs, write_project

pytestmark = pytest.mark.slow

CLIENTS = 20
MESSAGES = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServe]:
    folder = write_project(tmp_path_factory.mktemp("concurrency"), delay_ms=600)
    with KitServe(folder) as running:
        yield running
    assert "Traceback" not in running.output()


def test_twenty_clients_post_to_twenty_threads_at_once(server: KitServe) -> None:
    base = server.url("")

    async def client(i: int, assistant: str, gate: asyncio.Event) -> tuple[str, str]:
        prefix = "/api/v1" if i % 2 else "/v1"
        async with httpx.AsyncClient(headers=server.auth, timeout=30, trust_env=False) as http:
            thread = (await http.post(f"{base}{prefix}/threads", json={})).json()["id"]
            await gate.wait()  # every client starts posting at the same moment
            for n in range(MESSAGES):
                posted = await http.post(
                    f"{base}{prefix}/threads/{thread}/messages",
                    json={"role": "user", "content": f"client {i} message {n}"},
                )
                assert posted.status_code == 200, posted.text
            final = await http.post(
                f"{base}{prefix}/threads/{thread}/messages", json={"content": f"task-{i}"}
            )
            assert final.status_code == 200, final.text
            run = await http.post(
                f"{base}{prefix}/threads/{thread}/runs", json={"assistant_id": assistant}
            )
            assert run.status_code == 200, run.text
            return run.json()["id"], thread

    async def everyone() -> list[tuple[str, str]]:
        async with httpx.AsyncClient(headers=server.auth, trust_env=False) as http:
            made = await http.post(f"{base}/v1/assistants", json={"model": "qwen-max"})
            assistant = made.json()["id"]
        gate = asyncio.Event()
        tasks = [asyncio.create_task(client(i, assistant, gate)) for i in range(CLIENTS)]
        await asyncio.sleep(0.2)
        gate.set()
        return await asyncio.gather(*tasks)

    started = asyncio.run(everyone())
    with httpx.Client(headers=server.auth, timeout=30, trust_env=False) as http:
        final = wait_runs(http, base, dict(started), limit=60)
        assert {r["status"] for r in final.values()} == {"completed"}
        seen_ids: set[str] = set()
        for i, (_, thread) in enumerate(started):
            messages = thread_messages(http, base, thread)
            expected = [("user", "completed", f"client {i} message {n}") for n in range(MESSAGES)]
            expected += [
                ("user", "completed", f"task-{i}"),
                ("assistant", "completed", f"done task-{i}"),
            ]
            assert texts(messages) == expected
            ids = {m["id"] for m in messages}
            assert not ids & seen_ids
            seen_ids |= ids


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_two_runs_racing_on_one_thread_exactly_one_wins(server: KitServe, prefix: str) -> None:
    base = server.url("")

    async def race(assistant: str) -> tuple[list[httpx.Response], str]:
        async with (
            httpx.AsyncClient(headers=server.auth, timeout=30, trust_env=False) as one,
            httpx.AsyncClient(headers=server.auth, timeout=30, trust_env=False) as two,
        ):
            thread = await one.post(
                f"{base}{prefix}/threads", json={"messages": [{"content": "task-1"}]}
            )
            url = f"{base}{prefix}/threads/{thread.json()['id']}/runs"
            await one.get(f"{base}{prefix}/assistants")  # warm both connections
            await two.get(f"{base}{prefix}/assistants")
            answers = await asyncio.gather(
                one.post(url, json={"assistant_id": assistant}),
                two.post(url, json={"assistant_id": assistant}),
            )
            return list(answers), thread.json()["id"]

    with httpx.Client(headers=server.auth, timeout=30, trust_env=False) as http:
        assistant = http.post(f"{base}/v1/assistants", json={"model": "slow"}).json()["id"]
        for _ in range(5):
            answers, thread = asyncio.run(race(assistant))
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200, 400], [a.text for a in answers]
            winner = next(a for a in answers if a.status_code == 200).json()
            loser = next(a for a in answers if a.status_code == 400)
            body = loser.json()
            dialect = "dashscope" if prefix == "/api/v1" else "openai"
            jsonschema.validate(body, error_schemas()[dialect])
            message = body["message"] if dialect == "dashscope" else body["error"]["message"]
            assert "already has an active run" in message and winner["id"] in message
            listed = http.get(f"{base}/v1/threads/{thread}/runs").json()["data"]
            assert [r["id"] for r in listed] == [winner["id"]]
            final = wait_runs(http, base, {winner["id"]: thread}, limit=30)
            assert final[winner["id"]]["status"] == "completed"
            replies = [
                t
                for role, _, t in texts(thread_messages(http, base, thread))
                if role == "assistant"
            ]
            assert replies == ["done task-1"]
