"""Runs and run steps in both dialects, and the active-run guard on new messages.

``openai_routes`` and ``dashscope_routes`` are matched before the CRUD tables (``/threads/runs``
must win over ``/threads/{thread_id}``, and ``POST .../messages`` is answered here so a thread with
an active run refuses new messages: OpenAI's 400 texts, DashScope's error envelope).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.envelopes import DASHSCOPE, Dialect
from assistant_kit.server.events import sse_response
from assistant_kit.server.ids import new_id, now_ms, parse_id
from assistant_kit.server.routes import dashscope as ds_routes
from assistant_kit.server.routes import openai as oa_routes
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.runs.engine import RunEngine, ThreadBusy
from assistant_kit.server.services import NotFound, Services
from assistant_kit.server.store.base import CursorNotFound
from assistant_kit.server.store.records import RUNS, STEPS, AssistantRecord, RunRecord
from assistant_kit.server.toolbox import find_tool
from assistant_kit.server.tools.plugins import seal_plugin_tokens
from assistant_kit.server.validation import validate
from assistant_kit.server.views import run_object, step_object

JSONObject = dict[str, Any]

_STRINGS = ("model", "instructions", "additional_instructions")
_NUMBERS = ("temperature", "top_p")
_INTEGERS = ("top_k", "max_tokens", "max_prompt_tokens", "max_completion_tokens")
#: Run fields that override the assistant's, checked with the assistant's schema.
_OVERRIDES = (
    "model",
    "instructions",
    "tools",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "response_format",
    "file_ids",
    "tool_resources",
)
#: Largest integer setting (what the assistant schemas allow; SQLite stores at most 2**63 - 1).
_MAX_INT = 2_147_483_647


def _bad(param: str, message: str, code: str = "invalid_type") -> ApiError:
    return ApiError(400, code, message, param=param)


def check_run_body(body: Mapping[str, Any], *, needs_assistant: bool = True) -> None:
    """400 for a run body whose fields have the wrong types."""
    if needs_assistant and not isinstance(body.get("assistant_id"), str):
        if body.get("assistant_id") is None:
            raise _bad(
                "assistant_id",
                "Missing required parameter: 'assistant_id'.",
                "missing_required_parameter",
            )
        raise _bad("assistant_id", "Invalid type for 'assistant_id': expected a string.")
    for key in _STRINGS:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _bad(key, f"Invalid type for '{key}': expected a string.")
    for key in _NUMBERS:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _bad(key, f"Invalid type for '{key}': expected a number.")
    for key in _INTEGERS:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _bad(key, f"Invalid type for '{key}': expected an integer.")
        if isinstance(value, int) and not 1 <= value <= _MAX_INT:
            raise _bad(
                key,
                f"Invalid '{key}': expected an integer from 1 to {_MAX_INT}.",
                "invalid_value",
            )
    tools = body.get("tools")
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, dict) and "type" in t for t in tools)
    ):
        raise _bad("tools", "Invalid type for 'tools': expected a list of tool objects.")
    # The overrides obey the assistant's own rules (temperature 0..2, top_p 0..1, function
    # tools with a valid name, instructions length): one schema, not a second copy here.
    overrides = {k: body[k] for k in _OVERRIDES if body.get(k) is not None}
    if overrides.get("model") == "":
        del overrides["model"]  # an empty override means the assistant's model
    validate("assistant_update", overrides)
    if body.get("metadata") is not None:
        if not isinstance(body["metadata"], dict):
            raise _bad("metadata", "Invalid type for 'metadata': expected an object.")
        validate("message_update", {"metadata": body["metadata"]})  # 16 keys, lengths
    strategy = body.get("truncation_strategy")
    if strategy is not None:
        if not isinstance(strategy, dict) or strategy.get("type") not in ("auto", "last_messages"):
            raise _bad(
                "truncation_strategy",
                "Invalid 'truncation_strategy': expected {'type': 'auto' | 'last_messages', "
                "'last_messages': N}.",
                "invalid_value",
            )
        n = strategy.get("last_messages")
        if n is not None and (
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_INT
        ):
            raise _bad(
                "truncation_strategy.last_messages",
                "Invalid 'truncation_strategy.last_messages': expected an integer >= 1.",
                "invalid_value",
            )
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        function = choice.get("function")
        if (
            not isinstance(kind, str)
            or not kind
            or (
                kind == "function"
                and not (isinstance(function, dict) and isinstance(function.get("name"), str))
            )
        ):
            raise _bad(
                "tool_choice",
                "Invalid 'tool_choice': expected {'type': 'function', 'function': {'name': ...}}"
                " or {'type': <a tool type>}.",
                "invalid_value",
            )
    elif choice is not None and choice not in ("none", "auto", "required"):
        raise _bad(
            "tool_choice",
            f"Invalid value: {choice!r}. Supported values are: 'none', 'auto' and 'required'.",
            "invalid_value",
        )
    for key in ("parallel_tool_calls", "stream"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise _bad(key, f"Invalid type for '{key}': expected a boolean.")
    extra = body.get("additional_messages")
    if extra is not None:
        if not isinstance(extra, list) or not all(isinstance(m, dict) for m in extra):
            raise _bad("additional_messages", "Invalid type for 'additional_messages'.")
        for i, message in enumerate(extra):
            if "content" not in message:
                raise _bad(
                    f"additional_messages[{i}].content",
                    f"Missing required parameter: 'additional_messages[{i}].content'.",
                    "missing_required_parameter",
                )
            validate("message_create", message)


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
    """The run, step and guarded message-create routes in ``api``'s dialect."""
    d: Dialect = api.dialect
    services: Services = ctx.services
    engine: RunEngine = ctx.engine
    wire = ds_routes.WIRE if d is DASHSCOPE else oa_routes.WIRE

    def busy(exc: ThreadBusy, action: str) -> ApiError:
        thread, run = d.id("thread", exc.thread_id), d.id("run", exc.run_id)
        if action == "message":
            text = f"Can't add messages to {thread} while a run {run} is active."
        else:
            text = f"Thread {thread} already has an active run {run}."
        return ApiError(400, "invalid_request", text)

    async def assistant_of(body: Mapping[str, Any]) -> AssistantRecord:
        wire_id = str(body["assistant_id"])
        uid = parse_id("assistant", wire_id)
        if uid is None:
            raise NotFound("assistant", wire_id, wire_id=wire_id)
        return await services.get_assistant(uid)

    def respond(call: Call, run: RunRecord, stream: bool, after: int) -> JSONObject | Response:
        if stream:
            return sse_response(d, engine, run.id, after, call.request_id)
        return run_object(d, run)

    def additional(thread_id: str, body: Mapping[str, Any], created_at: int) -> list[Any]:
        return [
            services.message_record(thread_id, wire.message_input(m), created_at)
            for m in body.get("additional_messages") or ()
        ]

    async def create_message(call: Call) -> JSONObject:
        thread_id = call.id("thread")
        active = ctx.store.active_run(thread_id)
        if active is not None:
            await services.get_thread(thread_id)
            raise busy(ThreadBusy(thread_id, active, "message"), "message")
        record = await services.create_message(thread_id, wire.message_input(call.body))
        return wire.message_object(record)

    async def create_run(call: Call) -> JSONObject | Response:
        thread_id = call.id("thread")
        body = call.body
        check_run_body(body)
        await services.get_thread(thread_id)
        assistant = await assistant_of(body)
        run = build_run(engine, assistant, thread_id, body)
        try:
            engine.create_run(run, messages=additional(thread_id, body, run.created_at))
        except ThreadBusy as exc:
            raise busy(exc, "run") from exc
        return respond(call, run, body.get("stream") is True, 0)

    async def create_thread_and_run(call: Call) -> JSONObject | Response:
        body = call.body
        check_run_body(body)
        spec = body.get("thread") or {}
        if not isinstance(spec, dict):
            raise _bad("thread", "Invalid type for 'thread': expected an object.")
        validate("thread_create", spec)
        assistant = await assistant_of(body)
        thread, messages = services.new_thread(
            messages=[wire.message_input(m) for m in spec.get("messages") or ()],
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
        return d.list_body([run_object(d, r) for r in page.items], page.has_more)

    async def get_run(call: Call) -> JSONObject:
        return run_object(d, engine.get_run(call.id("thread"), call.id("run")))

    async def update_run(call: Call) -> JSONObject:
        thread_id, run_id = call.id("thread"), call.id("run")
        engine.get_run(thread_id, run_id)
        metadata = call.body.get("metadata")
        if metadata is not None:
            validate("message_update", {"metadata": metadata})
            await ctx.store.update(RUNS, run_id, {"metadata": metadata}, thread_id=thread_id)
        return run_object(d, engine.get_run(thread_id, run_id))

    async def cancel_run(call: Call) -> JSONObject:
        return run_object(d, engine.cancel(call.id("thread"), call.id("run")))

    async def submit_tool_outputs(call: Call) -> JSONObject | Response:
        thread_id, run_id = call.id("thread"), call.id("run")
        outputs = call.body.get("tool_outputs")
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            if outputs is None:
                raise _bad(
                    "tool_outputs",
                    "Missing required parameter: 'tool_outputs'.",
                    "missing_required_parameter",
                )
            raise _bad("tool_outputs", "Invalid type for 'tool_outputs': expected a list.")
        if call.body.get("stream") is not None and not isinstance(call.body["stream"], bool):
            raise _bad("stream", "Invalid type for 'stream': expected a boolean.")
        run, after = engine.submit_tool_outputs(thread_id, run_id, outputs)
        return respond(call, run, call.body.get("stream") is True, after)

    async def list_steps(call: Call) -> JSONObject:
        thread_id, run_id = call.id("thread"), call.id("run")
        engine.get_run(thread_id, run_id)
        try:
            page = await ctx.store.list_page(STEPS, call.page("step"), {"run_id": run_id})
        except CursorNotFound as exc:
            raise _bad(exc.param, f"Invalid '{exc.param}': no step with id '{exc.value}'.") from exc
        return d.list_body([step_object(d, s) for s in page.items], page.has_more)

    async def get_step(call: Call) -> JSONObject:
        thread_id, run_id, step_id = call.id("thread"), call.id("run"), call.id("step")
        engine.get_run(thread_id, run_id)
        step = await ctx.store.get(STEPS, step_id, run_id=run_id)
        if step is None:
            raise NotFound("step", step_id)
        return step_object(d, step)

    r = api.route
    one_run = "/threads/{thread_id}/runs/{run_id}"
    return [
        r("/threads/runs", create_thread_and_run, ["POST"]),
        r("/threads/{thread_id}/messages", create_message, ["POST"], schema="message_create"),
        r("/threads/{thread_id}/runs", create_run, ["POST"]),
        r("/threads/{thread_id}/runs", list_runs, ["GET"]),
        r(one_run, get_run, ["GET"]),
        r(one_run, update_run, ["POST", "PATCH"]),
        r(f"{one_run}/cancel", cancel_run, ["POST"]),
        r(f"{one_run}/submit_tool_outputs", submit_tool_outputs, ["POST"]),
        r(f"{one_run}/steps", list_steps, ["GET"]),
        r(f"{one_run}/steps/{{step_id}}", get_step, ["GET"]),
    ]


#: The route factories app.py puts ahead of the CRUD tables.
openai_routes = run_routes
dashscope_routes = run_routes
