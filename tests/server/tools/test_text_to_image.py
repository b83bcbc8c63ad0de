"""text_to_image: the local placeholder, and the DashScope and OpenAI backends against loopback."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from assistant_kit.errors import ConfigError
from assistant_kit.server.tools.text_to_image import TextToImageTool, render_placeholder

pytestmark = pytest.mark.anyio

PROMPT = "A lighthouse at dusk, oil painting"


async def test_local_backend_stores_a_png_with_the_prompt(context, files):
    tool = TextToImageTool("local", width=320, height=240)
    result = await tool.call({"prompt": PROMPT}, context)
    assert not result.is_error
    stored = result.images[0]
    assert json.loads(result.output) == {
        "prompt": PROMPT,
        "file_ids": [stored.id],
        "note": "placeholder image (local backend)",
    }
    assert Image.open(io.BytesIO(files.data[stored.id])).size == (320, 240)


def test_placeholder_is_deterministic_and_differs_by_prompt():
    assert render_placeholder(PROMPT) == render_placeholder(PROMPT)
    assert render_placeholder(PROMPT) != render_placeholder("A meadow")


def test_placeholder_renders_prompts_outside_latin_1():
    assert render_placeholder("画一只猫").startswith(b"\x89PNG")


async def test_an_empty_prompt_is_an_error_output(context):
    result = await TextToImageTool("local").call({"prompt": "  "}, context)
    assert result.is_error
    assert "missing the 'prompt' argument" in result.output


def test_an_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown backend 'midjourney'"):
        TextToImageTool("midjourney")


def dashscope_fake(polls_before_done: int):
    state = {"polls": 0}

    def handler(seen):
        if (
            seen.method == "POST"
            and seen.path == "/api/v1/services/aigc/text2image/image-synthesis"
        ):
            return 200, {}, {"output": {"task_id": "task-1", "task_status": "PENDING"}}
        if seen.method == "GET" and seen.path == "/api/v1/tasks/task-1":
            state["polls"] += 1
            if state["polls"] <= polls_before_done:
                return 200, {}, {"output": {"task_id": "task-1", "task_status": "RUNNING"}}
            results = [{"url": "https://cdn.example/lighthouse.png"}]
            return 200, {}, {"output": {"task_status": "SUCCEEDED", "results": results}}
        return 404, {}, {"code": "NotFound", "message": seen.path}

    return handler


async def test_dashscope_backend_creates_an_async_task_and_polls_it(context, loopback, monkeypatch):
    monkeypatch.setenv("KIT_TEST_DASHSCOPE_KEY", "ds-test-key")
    server = loopback(dashscope_fake(polls_before_done=2))
    tool = TextToImageTool(
        "dashscope",
        base_url=f"{server.url}/api/v1",
        api_key_env="KIT_TEST_DASHSCOPE_KEY",
        size="1024x1024",
        poll_interval_s=0.01,
    )
    result = await tool.call({"prompt": PROMPT}, context)
    await tool.aclose()
    assert json.loads(result.output) == {
        "prompt": PROMPT,
        "urls": ["https://cdn.example/lighthouse.png"],
    }
    assert result.urls == ("https://cdn.example/lighthouse.png",)
    create, *polls = server.seen
    assert create.headers["x-dashscope-async"] == "enable"
    assert create.headers["authorization"] == "Bearer ds-test-key"
    assert json.loads(create.body) == {
        "model": "wanx-v1",
        "input": {"prompt": PROMPT},
        "parameters": {"size": "1024*1024"},
    }
    assert [p.path for p in polls] == ["/api/v1/tasks/task-1"] * 3


async def test_dashscope_failed_task_is_an_error_output(context, loopback, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "ds-test-key")

    def handler(seen):
        if seen.method == "POST":
            return 200, {}, {"output": {"task_id": "t2", "task_status": "PENDING"}}
        failed = {"task_status": "FAILED", "message": "prompt rejected"}
        return 200, {}, {"output": failed}

    server = loopback(handler)
    tool = TextToImageTool("dashscope", base_url=server.url, poll_interval_s=0.01)
    result = await tool.call({"prompt": PROMPT}, context)
    await tool.aclose()
    assert result.is_error
    assert result.output == "text_to_image failed: dashscope task failed: prompt rejected"


async def test_dashscope_without_a_key_says_which_variable(context):
    result = await TextToImageTool("dashscope", base_url="http://127.0.0.1:9").call(
        {"prompt": PROMPT}, context
    )
    assert result.output == (
        "text_to_image failed: no API key: set the DASHSCOPE_API_KEY environment variable"
    )


async def test_openai_backend_stores_b64_images_and_passes_urls(
    context, files, loopback, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    png = render_placeholder("x", 8, 8)

    def handler(seen):
        if seen.method == "POST" and seen.path == "/v1/images/generations":
            data = [{"b64_json": base64.b64encode(png).decode()}, {"url": "https://img/2.png"}]
            return 200, {}, {"created": 1, "data": data}
        return 404, {}, {"error": {"message": "no route"}}

    server = loopback(handler)
    tool = TextToImageTool("openai", base_url=f"{server.url}/v1", model="dall-e-2", size="256x256")
    result = await tool.call({"prompt": PROMPT}, context)
    await tool.aclose()
    stored = result.images[0]
    assert files.data[stored.id] == png
    assert json.loads(result.output) == {
        "prompt": PROMPT,
        "file_ids": [stored.id],
        "urls": ["https://img/2.png"],
    }
    request = server.seen[0]
    assert request.headers["authorization"] == "Bearer sk-test"
    assert json.loads(request.body) == {
        "model": "dall-e-2",
        "prompt": PROMPT,
        "n": 1,
        "size": "256x256",
    }


async def test_openai_http_error_is_an_error_output(context, loopback, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = loopback(lambda seen: (400, {}, {"error": {"message": "bad size"}}))
    tool = TextToImageTool("openai", base_url=server.url)
    result = await tool.call({"prompt": PROMPT}, context)
    await tool.aclose()
    assert result.is_error
    assert result.output == "text_to_image failed: openai answered HTTP 400: bad size"


async def test_a_slow_backend_times_out_into_an_error_output(context, loopback, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "ds-test-key")

    def handler(seen):
        if seen.method == "POST":
            return 200, {}, {"output": {"task_id": "t3", "task_status": "PENDING"}}
        return 200, {}, {"output": {"task_status": "RUNNING"}}

    server = loopback(handler)
    tool = TextToImageTool("dashscope", base_url=server.url, poll_interval_s=0.01, timeout_s=0.3)
    result = await tool.call({"prompt": PROMPT}, context)
    await tool.aclose()
    assert result.output == "text_to_image failed: timed out after 0.3 s"
