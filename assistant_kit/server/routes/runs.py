"""Runs and run steps, the same in every dialect.

Request bodies are checked against ``schemas/api/run_create.json`` (and ``thread_run_create``,
``run_update``, ``tool_outputs_submit``) before a handler runs; the run settings obey the
assistant's rules. Objects are rendered and streams framed by ``api.dialect``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.events import sse_response
from assistant_kit.server.ids import new_id, now_ms, parse_id
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.runs.engine import RunEngine
from assistant_kit.server.services import NotFound, Services
from assistant_kit.server.store.base import CursorNotFound
from assistant_kit.server.store.records import RUNS, STEPS, AssistantRecord, RunRecord
from assistant_kit.server.tools.plugins import seal_plugin_tokens
from assistant_kit.server.tools.runner import find_tool

JSONObject = dict[str, Any]


def _bad(param: str, message: str, code: str = "invalid_type") -> ApiError:
    return ApiError(400, code, message, param=param)


def build_run(
    engine: RunEngine, assistant: AssistantRecord, thread_id: str, body: Mapping[str, Any]
) -> RunRecord:
    """A queued run with the effective settings: the body's, else the assistant's."""

    def pick(key: str, default: Any) -> Any:
        value = body.get(key)
        return default if value is None else value

    now = now_ms()
    tools = body.get("tools")
    response_format = pick("response_format", assistant.response_format)
    return RunRecord(
        id=new_id(),
        thread_id=thread_id,
        assistant_id=assistant.id,
        created_at=now,
        status="queued",
        model=pick("model", assistant.model),
        instructions=pick("instructions", assistant.instructions or ""),
        additional_instructions=body.get("additional_instructions") or None,
        tools=seal_plugin_tokens(list(tools), partial(find_tool, engine.calls.tools))
        if tools is not None
        else list(assistant.tools),
        file_ids=list(body.get("file_ids") or assistant.file_ids),
        metadata=dict(body.get("metadata") or {}),
        temperature=pick("temperature", assistant.temperature),
        top_p=pick("top_p", assistant.top_p),
        top_k=pick("top_k", assistant.top_k),
        max_tokens=pick("max_tokens", assistant.max_tokens),
        max_prompt_tokens=body.get("max_prompt_tokens"),
        max_completion_tokens=body.get("max_completion_tokens"),
        truncation_strategy=body.get("truncation_strategy"),
        tool_choice=body.get("tool_choice"),
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        response_format=None if response_format == "auto" else response_format,
        expires_at=now + int(engine.settings.run_expiry_s * 1000),
    )


def run_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """The run and step routes in ``api``'s dialect."""
    d = api.dialect
    services: Services = ctx.services
    engine: RunEngine = ctx.engine

    async def assistant_of(body: Mapping[str, Any]) -> AssistantRecord:
        wire_id = str(body["assistant_id"])
        uid = parse_id("assistant", wire_id)
        if uid is None:
            raise NotFound("assistant", wire_id, wire_id=wire_id)
        return await services.get_assistant(uid)

    def respond(call: Call, run: RunRecord, stream: bool, after: int) -> JSONObject | Response:
        if stream:
            return sse_response(d, engine, run.id, after, call.request_id, ctx.streams)
        return d.run(run)

    def additional(thread_id: str, body: Mapping[str, Any], created_at: int) -> list[Any]:
        return [
            services.message_record(thread_id, d.message_input(m), created_at)
            for m in body.get("additional_messages") or ()
        ]

    async def create_run(call: Call) -> JSONObject | Response:
        thread_id = call.id("thread")
        body = call.body
        await services.get_thread(thread_id)
        assistant = await assistant_of(body)
        run = build_run(engine, assistant, thread_id, body)
        engine.create_run(run, messages=additional(thread_id, body, run.created_at))
        return respond(call, run, body.get("stream") is True, 0)

    async def create_thread_and_run(call: Call) -> JSONObject | Response:
        body = call.body
        spec = body.get("thread") or {}
        assistant = await assistant_of(body)
        thread, messages = services.new_thread(
            messages=[d.message_input(m) for m in spec.get("messages") or ()],
            metadata=spec.get("metadata"),
            tool_resources=spec.get("tool_resources"),
        )
        run = build_run(engine, assistant, thread.id, body)
        engine.create_run(run, thread=thread, thread_messages=messages)
        return respond(call, run, body.get("stream") is True, 0)

    async def list_runs(call: Call) -> JSONObject:
        thread_id = call.id("thread")
        await services.get_thread(thread_id)
        try:
            page = await ctx.store.list_page(RUNS, call.page("run"), {"thread_id": thread_id})
        except CursorNotFound as exc:
            raise _bad(exc.param, f"Invalid '{exc.param}': no run with id '{exc.value}'.") from exc
        return d.list_body([d.run(r) for r in page.items], page.has_more)

    async def get_run(call: Call) -> JSONObject:
        return d.run(engine.get_run(call.id("thread"), call.id("run")))

    async def update_run(call: Call) -> JSONObject:
        thread_id, run_id = call.id("thread"), call.id("run")
        engine.get_run(thread_id, run_id)
        metadata = call.body.get("metadata")
        if metadata is not None:
            await ctx.store.update(RUNS, run_id, {"metadata": metadata}, thread_id=thread_id)
        return d.run(engine.get_run(thread_id, run_id))

    async def cancel_run(call: Call) -> JSONObject:
        return d.run(engine.cancel(call.id("thread"), call.id("run")))

    async def submit_tool_outputs(call: Call) -> JSONObject | Response:
        thread_id, run_id = call.id("thread"), call.id("run")
        run, after = engine.submit_tool_outputs(thread_id, run_id, call.body["tool_outputs"])
        return respond(call, run, call.body.get("stream") is True, after)

    async def list_steps(call: Call) -> JSONObject:
        thread_id, run_id = call.id("thread"), call.id("run")
        engine.get_run(thread_id, run_id)
        try:
            page = await ctx.store.list_page(STEPS, call.page("step"), {"run_id": run_id})
        except CursorNotFound as exc:
            raise _bad(exc.param, f"Invalid '{exc.param}': no step with id '{exc.value}'.") from exc
        include = call.request.query_params.getlist("include[]")
        return d.list_body([d.step(s, include) for s in page.items], page.has_more)

    async def get_step(call: Call) -> JSONObject:
        thread_id, run_id, step_id = call.id("thread"), call.id("run"), call.id("step")
        engine.get_run(thread_id, run_id)
        step = await ctx.store.get(STEPS, step_id, run_id=run_id)
        if step is None:
            raise NotFound("step", step_id)
        return d.step(step, call.request.query_params.getlist("include[]"))

    r = api.route
    one_run = "/threads/{thread_id}/runs/{run_id}"
    return [
        r("/threads/runs", create_thread_and_run, ["POST"], schema="thread_run_create"),
        r("/threads/{thread_id}/runs", create_run, ["POST"], schema="run_create"),
        r("/threads/{thread_id}/runs", list_runs, ["GET"]),
        r(one_run, get_run, ["GET"]),
        r(one_run, update_run, ["POST", "PATCH"], schema="run_update"),
        r(f"{one_run}/cancel", cancel_run, ["POST"]),
        r(
            f"{one_run}/submit_tool_outputs",
            submit_tool_outputs,
            ["POST"],
            schema="tool_outputs_submit",
        ),
        r(f"{one_run}/steps", list_steps, ["GET"]),
        r(f"{one_run}/steps/{{step_id}}", get_step, ["GET"]),
    ]
