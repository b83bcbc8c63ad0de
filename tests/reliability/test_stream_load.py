"""Hundreds of concurrent run streams on a real `kit serve`, model slower than the readers' wait:
every stream, in both dialects, ends with its run's terminal event and then ``done``.

The scripted model waits longer than the engine's one-second quiet wait, so readers time out
at least once while their run is in flight and then race its ending: a reader that stops on
seeing the run ended without draining the log loses ``thread.run.completed`` and ``done``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from kit_processes import KitServe
from kit_projects import write_project

pytestmark = pytest.mark.slow

#: Streams per dialect (all at once).
STREAMS = 150


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServe]:
    folder = write_project(tmp_path_factory.mktemp("stream-load"), delay_ms=2500)
    with KitServe(folder) as running:
        yield running
    assert "Traceback" not in running.output()


def _events(body: str) -> list[str]:
    """The SSE event names of a stream body, in order (both framings)."""
    return [
        line.partition(":")[2].strip() for line in body.splitlines() if line.startswith("event:")
    ]


def test_every_concurrent_stream_ends_with_its_terminal_event_and_done(server: KitServe) -> None:
    base = server.url("")

    async def stream(http: httpx.AsyncClient, prefix: str, assistant: str, i: int) -> list[str]:
        body = {
            "assistant_id": assistant,
            "model": "slow",
            "thread": {"messages": [{"role": "user", "content": f"task-{i}"}]},
            "stream": True,
        }
        async with http.stream("POST", f"{base}{prefix}/threads/runs", json=body) as response:
            assert response.status_code == 200, await response.aread()
            text = (await response.aread()).decode()
        return _events(text)

    async def everyone() -> list[tuple[str, list[str]]]:
        async with httpx.AsyncClient(headers=server.auth, trust_env=False) as http:
            made = await http.post(f"{base}/v1/assistants", json={"model": "slow"})
            assert made.status_code == 200, made.text
            assistant = made.json()["id"]
        # A fresh pool: one new connection per stream, none reused after an idle spell.
        limits = httpx.Limits(max_connections=2 * STREAMS + 10)
        async with httpx.AsyncClient(
            headers=server.auth, timeout=httpx.Timeout(120.0), limits=limits, trust_env=False
        ) as http:
            prefixes = ["/v1", "/api/v1"] * STREAMS
            results = await asyncio.wait_for(
                asyncio.gather(*(stream(http, p, assistant, i) for i, p in enumerate(prefixes))),
                timeout=180,
            )
        return list(zip(prefixes, results, strict=True))

    results = asyncio.run(everyone())
    assert len(results) == 2 * STREAMS
    final = ["thread.run.completed", "done"]
    lost = [(prefix, events[-3:]) for prefix, events in results if events[-2:] != final]
    assert not lost, f"{len(lost)} of {len(results)} streams lost their final events: {lost[:5]}"
