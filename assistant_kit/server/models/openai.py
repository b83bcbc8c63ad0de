"""``OpenAIChatBackend``: any chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server...).

kit.yaml::

    server:
      models:
        qwen-max: {backend: openai, base_url: http://127.0.0.1:11434/v1, api_key_env: MY_KEY,
                   model: qwen2.5, timeout: 60}

Options: ``base_url`` (required, up to ``/v1``), ``api_key_env`` (the environment variable holding
the key; read at each call, sent as a bearer token, never printed), ``model`` (the upstream name
for every model routed here) or ``models`` (a mapping of requested name -> upstream name; names
not in it pass through), ``timeout`` (seconds, per connect/read), ``stream`` (false: always ask
for the whole reply), ``stream_tool_calls`` (false: ask non-streaming whenever tools are offered,
for servers that drop streamed tool calls), ``stream_usage`` (false: do not send
``stream_options``, for servers that reject it), ``context_window`` (tokens, for ``auto``
truncation; default: the known window of the upstream model's family, ``CONTEXT_WINDOWS``, else
8,192).

A stream that ends with ``finish_reason: tool_calls`` but carried no calls is retried once without
streaming. A stream that ends with neither a ``finish_reason`` nor ``data: [DONE]`` (the endpoint
died, a proxy cut the connection) is a ``ModelError``, never a finished reply. Every failure is a
``ModelError`` whose ``code`` is ``rate_limit_exceeded`` (HTTP 429) or ``server_error``. Consume
``stream()`` under ``contextlib.aclosing`` when you may stop early, so the HTTP response is closed
at once.

One pooled ``httpx.AsyncClient`` per backend: every response is read to its end (past ``[DONE]``),
so sequential calls reuse one keep-alive connection (HTTP/2 on https endpoints that offer it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Literal

import httpx

from assistant_kit.errors import ModelError
from assistant_kit.server.models.base import (
    Capabilities,
    ChatMessage,
    Finish,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    TextDelta,
    Usage,
)
from assistant_kit.server.models.deltas import ToolCallAccumulator

Reason = Literal["stop", "tool_calls", "length"]
#: Context windows (tokens) by upstream model name prefix, the longest prefix wins; kit.yaml's
#: ``context_window`` overrides. A model of no listed family gets ``FALLBACK_WINDOW``.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "qwen-max": 32_768,
    "qwen-plus": 131_072,
    "qwen-turbo": 1_000_000,
    "qwen-long": 10_000_000,
    "qwen2.5": 32_768,
    "qwen3": 32_768,
    "llama3": 8_192,
    "llama3.1": 131_072,
    "llama3.2": 131_072,
    "llama3.3": 131_072,
    "mistral": 32_768,
    "deepseek": 65_536,
}
FALLBACK_WINDOW = 8192


def family_window(model: str) -> int:
    """The context window of ``model``'s family (``CONTEXT_WINDOWS``), else the fallback."""
    name = model.lower().rsplit("/", 1)[-1]
    prefixes = [p for p in CONTEXT_WINDOWS if name.startswith(p)]
    return CONTEXT_WINDOWS[max(prefixes, key=len)] if prefixes else FALLBACK_WINDOW


#: HTTP/2 needs the ``h2`` package (``httpx[http2]``); without it the pool speaks HTTP/1.1.
_HTTP2 = importlib.util.find_spec("h2") is not None


class OpenAIChatBackend(ModelBackend):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str | None = None,
        model: str | None = None,
        models: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        stream: bool = True,
        stream_tool_calls: bool = True,
        stream_usage: bool = True,
        context_window: int | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.model = model
        self.models = dict(models or {})
        self.timeout = float(timeout)
        self.use_stream = stream
        self.stream_tool_calls = stream_tool_calls
        self.stream_usage = stream_usage
        self.window = context_window
        self._capabilities = Capabilities(
            streaming=stream, context_window=context_window or FALLBACK_WINDOW
        )
        self._http = http
        self._owns_http = http is None

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def upstream_model(self, name: str) -> str:
        """The model name sent upstream for a requested ``name``."""
        return self.model or self.models.get(name, name)

    def context_window(self, model: str) -> int:
        """``context_window`` from kit.yaml, else the known window of the upstream model's
        family (``CONTEXT_WINDOWS``), else ``FALLBACK_WINDOW``."""
        if self.window:
            return self.window
        return family_window(self.upstream_model(model))

    async def aclose(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = self._body(request)
        if not self.use_stream or (request.tools and not self.stream_tool_calls):
            async for event in self._complete(request, body, sent=""):
                yield event
            return

        body["stream"] = True
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        acc = ToolCallAccumulator()
        text: list[str] = []
        usage: Usage | None = None
        reason: str | None = None
        done = False
        chunks = 0
        with self._errors():
            async with self._open_stream(body) as response:
                if response.headers.get("content-type", "").startswith("application/json"):
                    # The server ignored ``stream: true`` and sent the whole completion.
                    await response.aread()
                    async for event in self._events(request, self._json(response.text), ""):
                        yield event
                    return
                async for chunk in self._chunks(response):
                    chunks += 1
                    if chunk is None:  # data: [DONE]
                        done = True
                        continue
                    if isinstance(chunk.get("usage"), Mapping):
                        usage = _usage(chunk["usage"]) or usage
                    for choice in chunk.get("choices") or []:
                        if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                            continue
                        delta = choice.get("delta") or {}
                        content = delta.get("content")
                        if isinstance(content, str) and content:
                            text.append(content)
                            yield TextDelta(content)
                        for fragment in _fragments(delta):
                            for event in acc.feed(fragment):
                                yield event
                        reason = choice.get("finish_reason") or reason
                if not chunks:  # a 200 that carried no events: an HTML page, an empty body
                    kind = response.headers.get("content-type") or "no content type"
                    raise self._error(f"sent no completion events (a 200 response of {kind})")
                if reason is None and not done:
                    received = len("".join(text)) + sum(len(c.arguments) for c in acc.calls)
                    raise self._error(
                        f"cut its stream off after {received} characters, before the reply "
                        "finished (no finish_reason, no [DONE])"
                    )
        for event in acc.close():
            yield event
        if reason in ("tool_calls", "function_call") and not acc.calls:
            # Some servers announce tool calls but drop them from the stream: ask again whole.
            async for event in self._complete(request, self._body(request), sent="".join(text)):
                yield event
            return
        calls = acc.calls
        if usage is None:
            usage = self._estimate(request, "".join(text), calls)
        yield Finish(_reason(reason, bool(calls)), usage)

    @contextlib.asynccontextmanager
    async def _open_stream(self, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """POST a streaming request; retry once without ``stream_options`` if it is refused."""
        headers = self._headers()
        async with self._client().stream("POST", self.url, json=body, headers=headers) as response:
            if response.status_code < 400:
                yield response
                return
            await response.aread()
            refused = response.status_code in (400, 422) and "stream_options" in response.text
            if not (refused and "stream_options" in body):
                raise self._status_error(response)
        body.pop("stream_options")
        self.stream_usage = False  # remember: this server rejects it
        async with self._client().stream("POST", self.url, json=body, headers=headers) as response:
            if response.status_code >= 400:
                await response.aread()
                raise self._status_error(response)
            yield response

    async def _complete(
        self, request: ModelRequest, body: dict[str, Any], *, sent: str
    ) -> AsyncIterator[ModelEvent]:
        body.pop("stream", None)
        body.pop("stream_options", None)
        with self._errors():
            response = await self._client().post(self.url, json=body, headers=self._headers())
            if response.status_code >= 400:
                raise self._status_error(response)
            data = self._json(response.text)
        async for event in self._events(request, data, sent):
            yield event

    async def _events(
        self, request: ModelRequest, data: Any, sent: str
    ) -> AsyncIterator[ModelEvent]:
        """Events of a whole (non-streamed) completion; ``sent`` is text already streamed."""
        if not isinstance(data, Mapping):
            raise self._error("sent a completion that is not a JSON object")
        if isinstance(data.get("error"), Mapping):
            raise self._error(f"reported an error: {_message_of(data)}")
        choices = data.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], Mapping) else {}
        message = choice.get("message") or {}
        content = _text_of(message.get("content"))
        if content.startswith(sent) and len(content) > len(sent):
            yield TextDelta(content[len(sent) :])
        acc = ToolCallAccumulator()
        for position, call in enumerate(message.get("tool_calls") or []):
            if isinstance(call, Mapping):
                for event in acc.feed({**call, "index": position}):
                    yield event
        if isinstance(message.get("function_call"), Mapping):
            for event in acc.feed({"index": 0, "function": message["function_call"]}):
                yield event
        for event in acc.close():
            yield event
        usage = _usage(data.get("usage")) or self._estimate(request, content, acc.calls)
        yield Finish(_reason(choice.get("finish_reason"), bool(acc.calls)), usage)

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[Mapping[str, Any] | None]:
        """Server-sent events' JSON payloads, tolerant of missing blank lines between events;
        ``None`` for ``data: [DONE]``, the last one."""
        buffer: list[str] = []
        event = ""
        finished = False
        async for line in response.aiter_lines():
            if finished:  # read the body to its end, so the connection goes back to the pool
                continue
            if not line:
                if buffer:
                    yield self._payload("\n".join(buffer), event)
                buffer, event = [], ""
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                if value.strip() == "[DONE]":
                    yield None
                    finished = True
                    continue
                buffer.append(value)
                try:
                    data = json.loads("\n".join(buffer))
                except json.JSONDecodeError:
                    continue
                buffer = []
                yield self._checked(data, event)
        if buffer and not finished:
            yield self._payload("\n".join(buffer), event)

    def _payload(self, text: str, event: str) -> Mapping[str, Any]:
        return self._checked(self._json(text), event)

    def _checked(self, data: Any, event: str) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self._error("sent a stream chunk that is not a JSON object")
        if event == "error" or isinstance(data.get("error"), Mapping):
            raise self._error(f"reported an error mid-stream: {_message_of(data)}")
        return data

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.upstream_model(request.model),
            "messages": [_wire_message(m) for m in request.messages],
        }
        if request.tools:
            body["tools"] = [dict(t) for t in request.tools]
            body["tool_choice"] = request.tool_choice
            if not request.parallel_tool_calls:
                body["parallel_tool_calls"] = False
        for key in ("temperature", "top_p", "top_k", "max_tokens", "seed"):
            value = getattr(request, key)
            if value is not None:
                body[key] = value
        if request.response_format:
            body["response_format"] = dict(request.response_format)
        return body

    def _client(self) -> httpx.AsyncClient:
        """The backend's one pooled client: keep-alive connections, HTTP/2 where an https
        endpoint offers it (ALPN; plain http stays HTTP/1.1)."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.timeout,
                http2=_HTTP2,
                limits=httpx.Limits(max_keepalive_connections=64, keepalive_expiry=30.0),
            )
        return self._http

    def _key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ModelError(
                f"model endpoint {self.base_url}: the environment variable {self.api_key_env} "
                "(api_key_env in kit.yaml) is not set"
            )
        return key

    def _headers(self) -> dict[str, str]:
        key = self._key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _error(self, what: str, code: str = "server_error") -> ModelError:
        message = f"model endpoint {self.base_url} {what}"
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            message = message.replace(key, "***")
        return ModelError(message, code=code)

    def _status_error(self, response: httpx.Response) -> ModelError:
        try:
            detail = _message_of(response.json())
        except (json.JSONDecodeError, UnicodeDecodeError):
            detail = response.text[:300].strip()
        code = "rate_limit_exceeded" if response.status_code == 429 else "server_error"
        suffix = f": {detail}" if detail else ""
        return self._error(f"answered HTTP {response.status_code}{suffix}", code)

    def _json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(
                f"sent a response that is not JSON ({exc.msg}): {text[:120]!r}"
            ) from exc

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Translate httpx failures into ``ModelError`` (the most specific message first)."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise self._error(f"timed out after {self.timeout:g}s") from exc
        except httpx.ConnectError as exc:
            raise self._error(f"refused the connection or cannot be reached ({exc})") from exc
        except httpx.HTTPError as exc:
            raise self._error(f"failed: {type(exc).__name__}: {exc}") from exc

    def _estimate(self, request: ModelRequest, text: str, calls: Sequence[Any]) -> Usage:
        produced = len(text) + sum(len(c.name) + len(c.arguments) for c in calls)
        return Usage(self.count_tokens(request.messages), (produced + 3) // 4)


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _fragments(delta: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    fragments = [f for f in delta.get("tool_calls") or [] if isinstance(f, Mapping)]
    legacy = delta.get("function_call")
    if isinstance(legacy, Mapping):
        fragments.append({"index": 0, "function": legacy})
    return fragments


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, Mapping):
        return None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


def _reason(reason: Any, has_calls: bool) -> Reason:
    if reason == "length":
        return "length"
    return "tool_calls" if has_calls else "stop"


def _text_of(content: Any) -> str:
    """Message content as text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _message_of(data: Any) -> str:
    if isinstance(data, Mapping):
        error = data.get("error", data)
        if isinstance(error, Mapping):
            return str(error.get("message") or error.get("code") or json.dumps(error))[:300]
        if isinstance(error, str):
            return error[:300]
    return str(data)[:300]
