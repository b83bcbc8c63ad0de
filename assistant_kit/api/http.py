"""The HTTP mechanics both dialect clients share; each subclass states its differences.

A subclass sets ``dialect``, converts timestamps (``to_ms``) and may add headers or shape bodies;
the paths, pagination and record parsing are the same in both APIs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from assistant_kit.api.base import (
    AssistantClient,
    AssistantParams,
    MessageParams,
    Order,
    Page,
    RemoteAssistant,
    RemoteMessage,
    RemoteThread,
)
from assistant_kit.api.runs import (
    RemoteRun,
    RemoteRunStep,
    RunParams,
    SSEParser,
    StreamEvent,
    ToolOutput,
    required_calls,
    usage_of,
)
from assistant_kit.api.wire import decode, error_from, wire_errors

JSONObject = dict[str, Any]


class HTTPAssistantClient(AssistantClient):
    """``AssistantClient`` over an injected ``httpx.AsyncClient`` whose base URL is the API root.

    ``api_key``, when given, is sent as ``Authorization: Bearer``; otherwise the client's own
    headers (or auth) are used as they are.
    """

    #: Headers every request carries (e.g. OpenAI's beta header).
    extra_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, http: httpx.AsyncClient, *, api_key: str | None = None) -> None:
        self.http = http
        self._headers = dict(self.extra_headers)
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def to_ms(self, value: Any) -> int:
        """A wire timestamp in Unix milliseconds."""
        raise NotImplementedError

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: JSONObject | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSONObject:
        """One call: the decoded JSON object, or an ``ApiError``."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        with wire_errors(self.dialect):
            response = await self.http.request(
                method, path.lstrip("/"), json=json, params=query or None, headers=self._headers
            )
        return decode(response, self.dialect)

    # -- parsing -----------------------------------------------------------------------------

    def assistant(self, o: JSONObject) -> RemoteAssistant:
        return RemoteAssistant(
            id=o["id"],
            created_at=self.to_ms(o.get("created_at")),
            model=o.get("model") or "",
            name=o.get("name"),
            description=o.get("description"),
            instructions=o.get("instructions"),
            tools=tuple(o.get("tools") or ()),
            metadata=dict(o.get("metadata") or {}),
            temperature=o.get("temperature"),
            top_p=o.get("top_p"),
            top_k=o.get("top_k"),
            max_tokens=o.get("max_tokens"),
            response_format=o.get("response_format"),
            tool_resources=dict(o.get("tool_resources") or {}),
            file_ids=tuple(o.get("file_ids") or ()),
            raw=o,
        )

    def thread(self, o: JSONObject) -> RemoteThread:
        return RemoteThread(
            id=o["id"],
            created_at=self.to_ms(o.get("created_at")),
            metadata=dict(o.get("metadata") or {}),
            raw=o,
        )

    def message(self, o: JSONObject) -> RemoteMessage:
        return RemoteMessage(
            id=o["id"],
            thread_id=o.get("thread_id") or "",
            created_at=self.to_ms(o.get("created_at")),
            role=o.get("role") or "",
            content=tuple(o.get("content") or ()),
            assistant_id=o.get("assistant_id") or None,
            run_id=o.get("run_id") or None,
            status=o.get("status") or None,
            metadata=dict(o.get("metadata") or {}),
            raw=o,
        )

    @staticmethod
    def page(body: JSONObject, parse: Any) -> Page[Any]:
        data = tuple(parse(o) for o in body.get("data") or ())
        return Page(
            data=data,
            first_id=body.get("first_id") or (data[0].id if data else None),
            last_id=body.get("last_id") or (data[-1].id if data else None),
            has_more=bool(body.get("has_more")),
        )

    def assistant_body(self, params: AssistantParams, *, update: bool) -> JSONObject:
        return params.given()

    # -- assistants --------------------------------------------------------------------------

    async def create_assistant(self, params: AssistantParams) -> RemoteAssistant:
        body = self.assistant_body(params, update=False)
        return self.assistant(await self.request("POST", "/assistants", json=body))

    async def get_assistant(self, assistant_id: str) -> RemoteAssistant:
        return self.assistant(await self.request("GET", f"/assistants/{assistant_id}"))

    async def update_assistant(self, assistant_id: str, params: AssistantParams) -> RemoteAssistant:
        body = self.assistant_body(params, update=True)
        return self.assistant(await self.request("POST", f"/assistants/{assistant_id}", json=body))

    async def delete_assistant(self, assistant_id: str) -> None:
        await self.request("DELETE", f"/assistants/{assistant_id}")

    async def list_assistants(
        self,
        *,
        limit: int = 20,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RemoteAssistant]:
        params = {"limit": limit, "order": order, "after": after, "before": before}
        return self.page(await self.request("GET", "/assistants", params=params), self.assistant)

    # -- threads -----------------------------------------------------------------------------

    async def create_thread(
        self,
        *,
        messages: Sequence[MessageParams] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> RemoteThread:
        body: JSONObject = {}
        if messages:
            body["messages"] = [m.body() for m in messages]
        if metadata:
            body["metadata"] = dict(metadata)
        return self.thread(await self.request("POST", "/threads", json=body))

    async def get_thread(self, thread_id: str) -> RemoteThread:
        return self.thread(await self.request("GET", f"/threads/{thread_id}"))

    async def update_thread(self, thread_id: str, *, metadata: Mapping[str, str]) -> RemoteThread:
        body = {"metadata": dict(metadata)}
        return self.thread(await self.request("POST", f"/threads/{thread_id}", json=body))

    async def delete_thread(self, thread_id: str) -> None:
        await self.request("DELETE", f"/threads/{thread_id}")

    # -- messages ----------------------------------------------------------------------------

    async def create_message(self, thread_id: str, message: MessageParams) -> RemoteMessage:
        path = f"/threads/{thread_id}/messages"
        return self.message(await self.request("POST", path, json=message.body()))

    async def get_message(self, thread_id: str, message_id: str) -> RemoteMessage:
        path = f"/threads/{thread_id}/messages/{message_id}"
        return self.message(await self.request("GET", path))

    async def update_message(
        self, thread_id: str, message_id: str, *, metadata: Mapping[str, str]
    ) -> RemoteMessage:
        path = f"/threads/{thread_id}/messages/{message_id}"
        return self.message(await self.request("POST", path, json={"metadata": dict(metadata)}))

    async def list_messages(
        self,
        thread_id: str,
        *,
        limit: int = 20,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
        run_id: str | None = None,
    ) -> Page[RemoteMessage]:
        params = {
            "limit": limit,
            "order": order,
            "after": after,
            "before": before,
            "run_id": run_id,
        }
        body = await self.request("GET", f"/threads/{thread_id}/messages", params=params)
        return self.page(body, self.message)

    # -- runs --------------------------------------------------------------------------------

    def _ms(self, value: Any) -> int | None:
        return None if value is None else self.to_ms(value)

    def run(self, o: JSONObject) -> RemoteRun:
        return RemoteRun(
            id=o["id"],
            thread_id=o.get("thread_id") or "",
            assistant_id=o.get("assistant_id") or "",
            status=o.get("status") or "",
            created_at=self.to_ms(o.get("created_at")),
            model=o.get("model") or "",
            instructions=o.get("instructions"),
            tools=tuple(o.get("tools") or ()),
            metadata=dict(o.get("metadata") or {}),
            required_tool_calls=required_calls(o),
            last_error=o.get("last_error") or None,
            incomplete_details=o.get("incomplete_details") or None,
            usage=usage_of(o.get("usage")),
            started_at=self._ms(o.get("started_at")),
            completed_at=self._ms(o.get("completed_at")),
            expires_at=self._ms(o.get("expires_at")),
            raw=o,
        )

    def run_step(self, o: JSONObject) -> RemoteRunStep:
        return RemoteRunStep(
            id=o["id"],
            run_id=o.get("run_id") or "",
            type=o.get("type") or "",
            status=o.get("status") or "",
            created_at=self.to_ms(o.get("created_at")),
            step_details=dict(o.get("step_details") or {}),
            usage=usage_of(o.get("usage")),
            raw=o,
        )

    def stream_event(self, name: str, data: JSONObject) -> StreamEvent:
        kind = data.get("object")
        parsed: Any = None
        if kind == "thread.run":
            parsed = self.run(data)
        elif kind == "thread.run.step":
            parsed = self.run_step(data)
        elif kind == "thread.message":
            parsed = self.message(data)
        elif kind == "thread":
            parsed = self.thread(data)
        return StreamEvent(name, data, parsed)

    async def _stream(self, path: str, body: JSONObject) -> AsyncIterator[StreamEvent]:
        body = {**body, "stream": True}
        parser = SSEParser()
        with wire_errors(self.dialect):
            async with self.http.stream(
                "POST", path.lstrip("/"), json=body, headers=self._headers
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    decode(response, self.dialect)
                async for line in response.aiter_lines():
                    got = parser.feed(line)
                    if got is None:
                        continue
                    name, data, status = got
                    if name == "done" or data.strip() == "[DONE]":
                        yield StreamEvent("done")
                        return
                    payload = json.loads(data)
                    if name == "error":
                        raise error_from(
                            httpx.Response(status or 500, request=response.request),
                            payload,
                            self.dialect,
                        )
                    yield self.stream_event(name, payload)

    async def create_run(self, thread_id: str, params: RunParams) -> RemoteRun:
        body = {**params.body(), "stream": False}
        return self.run(await self.request("POST", f"/threads/{thread_id}/runs", json=body))

    def stream_run(self, thread_id: str, params: RunParams) -> AsyncIterator[StreamEvent]:
        return self._stream(f"/threads/{thread_id}/runs", params.body())

    def _thread_and_run_body(
        self,
        params: RunParams,
        messages: Sequence[MessageParams],
        metadata: Mapping[str, str] | None,
    ) -> JSONObject:
        thread: JSONObject = {}
        if messages:
            thread["messages"] = [m.body() for m in messages]
        if metadata:
            thread["metadata"] = dict(metadata)
        return {**params.body(), "thread": thread}

    async def create_thread_and_run(
        self,
        params: RunParams,
        *,
        messages: Sequence[MessageParams] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> RemoteRun:
        body = {**self._thread_and_run_body(params, messages, metadata), "stream": False}
        return self.run(await self.request("POST", "/threads/runs", json=body))

    def stream_thread_and_run(
        self,
        params: RunParams,
        *,
        messages: Sequence[MessageParams] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        return self._stream("/threads/runs", self._thread_and_run_body(params, messages, metadata))

    async def get_run(self, thread_id: str, run_id: str) -> RemoteRun:
        return self.run(await self.request("GET", f"/threads/{thread_id}/runs/{run_id}"))

    async def list_runs(
        self,
        thread_id: str,
        *,
        limit: int = 20,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RemoteRun]:
        params = {"limit": limit, "order": order, "after": after, "before": before}
        body = await self.request("GET", f"/threads/{thread_id}/runs", params=params)
        return self.page(body, self.run)

    async def update_run(
        self, thread_id: str, run_id: str, *, metadata: Mapping[str, str]
    ) -> RemoteRun:
        path = f"/threads/{thread_id}/runs/{run_id}"
        return self.run(await self.request("POST", path, json={"metadata": dict(metadata)}))

    async def cancel_run(self, thread_id: str, run_id: str) -> RemoteRun:
        return self.run(await self.request("POST", f"/threads/{thread_id}/runs/{run_id}/cancel"))

    async def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: Sequence[ToolOutput]
    ) -> RemoteRun:
        path = f"/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"
        body = {"tool_outputs": [o.body() for o in outputs], "stream": False}
        return self.run(await self.request("POST", path, json=body))

    def stream_submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: Sequence[ToolOutput]
    ) -> AsyncIterator[StreamEvent]:
        path = f"/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"
        return self._stream(path, {"tool_outputs": [o.body() for o in outputs]})

    async def list_run_steps(
        self,
        thread_id: str,
        run_id: str,
        *,
        limit: int = 20,
        order: Order = "asc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RemoteRunStep]:
        params = {"limit": limit, "order": order, "after": after, "before": before}
        path = f"/threads/{thread_id}/runs/{run_id}/steps"
        return self.page(await self.request("GET", path, params=params), self.run_step)

    async def get_run_step(self, thread_id: str, run_id: str, step_id: str) -> RemoteRunStep:
        path = f"/threads/{thread_id}/runs/{run_id}/steps/{step_id}"
        return self.run_step(await self.request("GET", path))
