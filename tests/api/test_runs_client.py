"""Run streams as the clients parse them: both framings, ``done``, errors mid-stream."""

from __future__ import annotations

import httpx
import pytest

from assistant_kit.api import DashScopeClient, OpenAIClient, RunParams, ToolOutput
from assistant_kit.api.runs import SSEParser
from assistant_kit.errors import ApiError

pytestmark = pytest.mark.anyio

RUN = (
    '{"id":"run_1","object":"thread.run","thread_id":"thread_1","assistant_id":"asst_1",'
    '"status":"%s","created_at":%d}'
)


def dashscope_stream(request: httpx.Request) -> httpx.Response:
    body = (
        "event:thread.run.created\ndata:" + RUN % ("queued", 1711517598169) + "\n\n"
        'event:thread.message.delta\ndata:{"id":"message_1","object":"thread.message.delta",'
        '"delta":{"role":"assistant","content":[{"type":"text","text":{"value":"Hi"}}]}}\n\n'
        "event:error\nstatus:429\n"
        'data:{"code":"Throttling","message":"slow down","request_id":"r1"}\n\n'
    )
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def openai_stream(request: httpx.Request) -> httpx.Response:
    assert request.headers["openai-beta"] == "assistants=v2"
    body = (
        ": keep-alive\n\n"
        "event: thread.run.requires_action\ndata: "
        + RUN.replace(
            '"created_at":%d',
            '"created_at":%d,"required_action":{"type":'
            '"submit_tool_outputs","submit_tool_outputs":{"tool_calls":[{"id":"call_1",'
            '"type":"function","function":{"name":"f","arguments":"{\\"x\\": 1}"}}]}}',
        )
        % ("requires_action", 1711517598)
        + "\n\nevent: done\ndata: [DONE]\n\n"
    )
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


async def test_openai_stream_events_are_typed_and_end_at_done() -> None:
    async with httpx.AsyncClient(
        base_url="http://x/v1", transport=httpx.MockTransport(openai_stream)
    ) as http:
        client = OpenAIClient(http, api_key="k")
        events = [e async for e in client.stream_run("thread_1", RunParams(assistant_id="a"))]
    assert [e.event for e in events] == ["thread.run.requires_action", "done"]
    run = events[0].run
    assert run is not None and run.requires_action and run.created_at == 1711517598000
    assert [(c.id, c.name, c.args) for c in run.required_tool_calls] == [("call_1", "f", {"x": 1})]


async def test_dashscope_error_event_raises_api_error_after_the_events_before_it() -> None:
    seen = []
    async with httpx.AsyncClient(
        base_url="http://x/api/v1", transport=httpx.MockTransport(dashscope_stream)
    ) as http:
        client = DashScopeClient(http, api_key="k")
        with pytest.raises(ApiError) as info:
            async for event in client.stream_submit_tool_outputs(
                "thread_1", "run_1", [ToolOutput("", "42")]
            ):
                seen.append(event)
    assert [e.event for e in seen] == ["thread.run.created", "thread.message.delta"]
    assert seen[1].text == "Hi" and seen[0].run is not None
    assert info.value.status == 429 and info.value.message == "slow down"


def test_sse_parser_takes_both_framings() -> None:
    parser = SSEParser()
    lines = ["event:a", "data:{}", "", "event: b", "data: [DONE]", ""]
    got = [r for r in (parser.feed(line) for line in lines) if r is not None]
    assert got == [("a", "{}", None), ("b", "[DONE]", None)]
