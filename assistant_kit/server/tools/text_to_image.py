"""The ``text_to_image`` built-in tool (DashScope's older name: ``wanx``), with three backends.

* ``local``: a **placeholder, not image generation**: a deterministic PNG (Pillow) whose picture is
  derived from the prompt's hash and whose caption is the prompt. For offline demos and tests.
* ``dashscope``: DashScope's image-synthesis HTTP API. The task is created asynchronously
  (``X-DashScope-Async: enable``) and polled at ``/tasks/{task_id}`` until it ends.
* ``openai``: the OpenAI images API, ``POST /images/generations``.

The output the model sees is JSON with the image's stored file id and/or URL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import textwrap
from collections.abc import Mapping
from typing import Any

import httpx

from assistant_kit.catalog import aliases_of
from assistant_kit.errors import ConfigError, ToolError
from assistant_kit.server.tools.base import BuiltinTool, StoredFile, ToolContext, ToolOutput
from assistant_kit.server.tools.guard import guarded, string_argument, to_json

_DESCRIPTION = "Create an image from a text description; returns the image's file id or URL."
BACKENDS = ("local", "dashscope", "openai")
_DASHSCOPE_URL = "https://dashscope.aliyuncs.com/api/v1"
_DASHSCOPE_PATH = "/services/aigc/text2image/image-synthesis"
_OPENAI_URL = "https://api.openai.com/v1"


class TextToImageTool(BuiltinTool):
    """Makes an image for a prompt with the configured backend.

    Options (kit.yaml ``server.tools.text_to_image``): ``backend`` (local | dashscope | openai),
    ``base_url``, ``api_key_env``, ``model``, ``size``, ``timeout_s``, ``poll_interval_s``;
    ``width``/``height`` for ``local``.
    """

    type = "text_to_image"
    aliases = aliases_of("text_to_image")

    def __init__(
        self,
        backend: str = "local",
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        model: str | None = None,
        size: str | None = None,
        timeout_s: float = 120.0,
        poll_interval_s: float = 2.0,
        width: int = 512,
        height: int = 512,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"text_to_image: unknown backend {backend!r} (use {BACKENDS})")
        self.backend = backend
        default_url = {"dashscope": _DASHSCOPE_URL, "openai": _OPENAI_URL}.get(backend, "")
        self.base_url = (base_url or default_url).rstrip("/")
        default_key = {"dashscope": "DASHSCOPE_API_KEY", "openai": "OPENAI_API_KEY"}
        self.api_key_env = api_key_env or default_key.get(backend)
        self.model = model or {"dashscope": "wanx-v1", "openai": "dall-e-3"}.get(backend, "")
        self.size = size
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.width, self.height = width, height
        self._http = http
        self._own_http: httpx.AsyncClient | None = None

    def definition(self) -> Mapping[str, Any]:
        return {
            "name": "text_to_image",
            "description": _DESCRIPTION,
            "parameters": {
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "description": "What the image shows"},
                },
                "required": ["prompt"],
            },
        }

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        return await guarded(self.type, self._make(arguments, context), timeout_s=self.timeout_s)

    async def aclose(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    async def _make(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        prompt = string_argument(arguments, "prompt", "text", "query")
        if self.backend == "local":
            data = render_placeholder(prompt, self.width, self.height)
            stored = await context.save_file(data, "image.png", "image/png")
            return _result(prompt, [stored], [], note="placeholder image (local backend)")
        if self.backend == "dashscope":
            urls = await self._dashscope(prompt)
            return _result(prompt, [], urls)
        return await self._openai(prompt, context)

    def _client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        if self._own_http is None:
            self._own_http = httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False)
        return self._own_http

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env or "", "")
        if not key:
            raise ToolError(f"no API key: set the {self.api_key_env} environment variable")
        return {"Authorization": f"Bearer {key}"}

    async def _dashscope(self, prompt: str) -> list[str]:
        http = self._client()
        headers = {**self._headers(), "X-DashScope-Async": "enable"}
        body: dict[str, Any] = {"model": self.model, "input": {"prompt": prompt}, "parameters": {}}
        if self.size:
            body["parameters"]["size"] = self.size.replace("x", "*")
        response = await http.post(
            f"{self.base_url}{_DASHSCOPE_PATH}", json=body, headers=headers, follow_redirects=False
        )
        answer = _json(response, "dashscope")
        task_id = (answer.get("output") or {}).get("task_id")
        if not task_id:
            raise ToolError(f"dashscope returned no task id: {_snippet(answer)}")
        while True:
            polled = _json(
                await http.get(
                    f"{self.base_url}/tasks/{task_id}",
                    headers=self._headers(),
                    follow_redirects=False,
                ),
                "dashscope",
            )
            output = polled.get("output") or {}
            status = output.get("task_status")
            if status == "SUCCEEDED":
                urls = [r["url"] for r in output.get("results") or () if r.get("url")]
                if not urls:
                    raise ToolError("dashscope task succeeded without an image URL")
                return urls
            if status in ("FAILED", "CANCELED", "UNKNOWN"):
                message = output.get("message") or polled.get("message") or status
                raise ToolError(f"dashscope task {status.lower()}: {message}")
            await asyncio.sleep(self.poll_interval_s)

    async def _openai(self, prompt: str, context: ToolContext) -> ToolOutput:
        body: dict[str, Any] = {"model": self.model, "prompt": prompt, "n": 1}
        if self.size:
            body["size"] = self.size
        response = await self._client().post(
            f"{self.base_url}/images/generations",
            json=body,
            headers=self._headers(),
            follow_redirects=False,
        )
        answer = _json(response, "openai")
        files: list[StoredFile] = []
        urls: list[str] = []
        for item in answer.get("data") or ():
            if item.get("b64_json"):
                data = base64.b64decode(item["b64_json"])
                files.append(await context.save_file(data, "image.png", "image/png"))
            elif item.get("url"):
                urls.append(item["url"])
        if not files and not urls:
            raise ToolError(f"openai returned no image: {_snippet(answer)}")
        return _result(prompt, files, urls)


def _result(prompt: str, files: list[StoredFile], urls: list[str], note: str = "") -> ToolOutput:
    shown: dict[str, Any] = {"prompt": prompt}
    if files:
        shown["file_ids"] = [f.id for f in files]
    if urls:
        shown["urls"] = urls
    if note:
        shown["note"] = note
    return ToolOutput(output=to_json(shown), images=tuple(files), urls=tuple(urls))


def _json(response: httpx.Response, backend: str) -> dict[str, Any]:
    if response.is_redirect:
        raise ToolError(f"{backend} answered with a redirect, which is not followed")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code >= 400 or not isinstance(answer, dict):
        detail = _snippet(answer) if isinstance(answer, dict) else response.text[:200]
        raise ToolError(f"{backend} answered HTTP {response.status_code}: {detail}")
    return answer


def _snippet(answer: Any) -> str:
    if isinstance(answer, dict):
        message = answer.get("message") or (answer.get("error") or {})
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)[:200]
    return to_json(answer)[:200]


def render_placeholder(prompt: str, width: int = 512, height: int = 512) -> bytes:
    """A deterministic PNG for ``prompt``: colour bands from its hash, the prompt as caption.

    Not image generation: the same prompt always gives the same bytes.
    """
    from PIL import Image, ImageDraw, ImageFont

    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    draw = ImageDraw.Draw(image)
    bands = 8
    for band in range(bands):
        colour = tuple(digest[3 + band * 3 : 6 + band * 3])
        top = band * (height * 2 // 3) // bands
        draw.rectangle([0, top, width, top + height // (bands * 2)], fill=colour)
    font = ImageFont.load_default()
    caption_top = height * 2 // 3
    draw.rectangle([0, caption_top, width, height], fill=(255, 255, 255))
    lines = textwrap.wrap(prompt, width=max(10, width // 7))[:8]
    for number, line in enumerate(lines):
        position = (8, caption_top + 6 + number * 14)
        try:
            draw.text(position, line, fill=(0, 0, 0), font=font)
        except UnicodeError:  # the built-in bitmap font only knows Latin-1
            safe = line.encode("latin-1", "replace").decode("latin-1")
            draw.text(position, safe, fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
