"""The ``/responses`` routes (OpenAI mount); see ``server/responses/`` for the mapping of a
response onto a run on a thread."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError, ModelError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.ids import new_id, now_ms, parse_id
from assistant_kit.server.responses.prompt import prompt_assistant, prompt_instructions
from assistant_kit.server.responses.render import Renderer, item_page
from assistant_kit.server.responses.request import (
    bad,
    parse_input,
    response_uid,
    run_response_format,
    run_tool_choice,
    run_tools,
    shown_tools,
    wire_id,
)
from assistant_kit.server.responses.stream import stream_response
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.runs.engine import RunEngine
from assistant_kit.server.runs.history import thread_history
from assistant_kit.server.runs.transcript import HistoryItem, ThreadMessage, build_prompt
from assistant_kit.server.services import Services
from assistant_kit.server.store.records import (
    RESPONSES,
    EventEntry,
    ResponseRecord,
    RunRecord,
    record_data,
)

JSONObject = dict[str, Any]

# -- routes ------------------------------------------------------------------------------------


def response_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """``/responses`` and its sub-resources (the OpenAI mount)."""
    services: Services = ctx.services
    engine: RunEngine = ctx.engine
    render = Renderer(ctx.store)

    async def load(uid: str, *, param: str = "response_id") -> tuple[ResponseRecord, RunRecord]:
        record = await ctx.store.get(RESPONSES, uid)
        run = ctx.store.get_run(uid)
        if record is None or run is None:
            raise ApiError(
                404,
                "not_found",
                f"Response with id '{wire_id('response', uid)}' not found.",
                param=param,
            )
        return record, run

    async def visible(call: Call) -> tuple[ResponseRecord, RunRecord]:
        uid = response_uid(call.request.path_params["response_id"])
        record, run = await load(uid)
        if not record.stored:
            raise ApiError(
                404, "not_found", f"Response with id '{wire_id('response', uid)}' not found."
            )
        return record, run

    def answer_calls(run: RunRecord, outputs: Mapping[str, str]) -> None:
        """End the previous response's run: its pending calls get ``outputs``, its tool step
        completes (so the model reads it as history) and the run is completed."""
        now = now_ms()
        pending = (run.required_action or {}).get("tool_calls") or []
        missing = [str(c["id"]) for c in pending if str(c["id"]) not in outputs]
        if outputs and missing:
            raise bad("input", f"No function_call_output for call_id(s) {missing}.")
        unknown = [k for k in outputs if k not in {str(c["id"]) for c in pending}]
        if unknown:
            raise bad("input", f"No pending function call with call_id {unknown[0]!r}.")
        step_id = str((run.required_action or {}).get("step_id"))
        with ctx.store.transaction() as tx:
            events: list[EventEntry] = []
            step = tx.get_step(step_id)
            if step is not None and outputs:
                calls = [
                    {**c, "output": outputs.get(str(c.get("id")), c.get("output"))}
                    for c in step.step_details.get("tool_calls", [])
                ]
                details = {**step.step_details, "tool_calls": calls}
                tx.set_step(
                    step_id, {"step_details": details, "status": "completed", "completed_at": now}
                )
                updated = record_data(tx.get_step(step_id))
                events.append(("thread.run.step.completed", {"kind": "step", "record": updated}))
            changes = {"status": "completed", "required_action": None, "completed_at": now}
            if tx.set_run(run.id, changes, when=("requires_action",)):
                final = record_data(tx.get_run(run.id))
                events += [("thread.run.completed", {"kind": "run", "record": final}), ("done", {})]
            tx.append_events(run.id, run.thread_id, events)
        engine.notify(run.id)

    async def create(call: Call) -> JSONObject | Response:
        body = call.body
        prompt = body.get("prompt")
        assistant = await prompt_assistant(services, prompt) if prompt is not None else None
        model = body.get("model") or (assistant.model if assistant else None)
        if not isinstance(model, str) or not model:
            raise bad("model", "Missing required parameter: 'model'.", "missing_required_parameter")
        parsed = parse_input(body.get("input"))
        previous: ResponseRecord | None = None
        thread_id: str | None = None
        conversation = False
        prev_wire = body.get("previous_response_id")
        if prev_wire:
            previous, prev_run = await load(
                response_uid(str(prev_wire), "previous_response_id"),
                param="previous_response_id",
            )
            thread_id = previous.thread_id
            conversation = bool(previous.conversation)
            if prev_run.status == "requires_action":
                answer_calls(prev_run, parsed.outputs)
            elif parsed.outputs:
                raise bad("input", "The previous response has no pending function calls.")
        elif parsed.outputs:
            raise bad(
                "input",
                "function_call_output items need previous_response_id (the response whose "
                "function_call items they answer).",
            )
        conv = body.get("conversation")
        if conv is not None:
            conv_id = conv.get("id") if isinstance(conv, Mapping) else conv
            uid = parse_id("thread", str(conv_id))
            if uid is None or (thread_id is not None and uid != thread_id):
                raise bad("conversation", f"Invalid 'conversation': {conv_id!r}.")
            await services.get_thread(uid)
            thread_id, conversation = uid, True
        instructions = body.get("instructions")
        if not isinstance(instructions, str):
            variables = prompt.get("variables") if isinstance(prompt, Mapping) else None
            instructions = prompt_instructions(assistant, variables) if assistant else None
        tools = run_tools(body.get("tools"))
        if body.get("tools") is None and assistant is not None:
            tools = list(assistant.tools)
        developer = "\n\n".join(parsed.developer) or None
        truncation = body.get("truncation") or "disabled"
        settings = {
            k: body.get(k)
            for k in (
                "instructions",
                "reasoning",
                "text",
                "tool_choice",
                "tools",
                "user",
                "background",
                "include",
            )
            if body.get(k) is not None
        }
        settings["truncation"] = truncation
        if assistant is not None:
            settings.update(prompt=prompt, instructions=instructions, tools=shown_tools(tools))

        def pick(key: str) -> Any:
            value = body.get(key)
            return getattr(assistant, key) if value is None and assistant else value

        now = now_ms()
        run = RunRecord(
            id=new_id(),
            thread_id=thread_id or new_id(),
            assistant_id=assistant.id if assistant else "",
            created_at=now,
            status="queued",
            model=model,
            instructions=instructions or "",
            additional_instructions=developer,
            tools=tools,
            metadata=dict(body.get("metadata") or {}),
            temperature=pick("temperature"),
            top_p=pick("top_p"),
            max_completion_tokens=body.get("max_output_tokens"),
            truncation_strategy={"type": "auto"} if truncation == "auto" else None,
            tool_choice=run_tool_choice(body.get("tool_choice")),
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
            response_format=run_response_format(body.get("text"))
            or (assistant.response_format if assistant else None),
            expires_at=now + int(engine.settings.run_expiry_s * 1000),
        )
        messages = [
            dataclasses.replace(services.message_record(run.thread_id, m, now), run_id=None)
            for m in parsed.messages
        ]
        record = ResponseRecord(
            id=run.id,
            created_at=now,
            thread_id=run.thread_id,
            stored=body.get("store") is not False,
            previous_response_id=previous.id if previous else None,
            conversation=conversation,
            input_ids=[m.id for m in messages],
            settings=settings,
        )
        if thread_id is None:
            thread, _ = services.new_thread()
            thread = dataclasses.replace(thread, id=run.thread_id)
            engine.create_run(run, thread=thread, thread_messages=messages)
        else:
            engine.create_run(run, messages=messages)
        await ctx.store.insert(RESPONSES, record)
        if body.get("stream") is True:
            return stream_response(engine, render, record)
        if not record.settings.get("background"):
            async for _batch in engine.event_batches(run.id):
                pass
        final = ctx.store.get_run(run.id) or run
        return await render.response(final, record)

    async def retrieve(call: Call) -> JSONObject | Response:
        record, run = await visible(call)
        query = call.request.query_params
        if query.get("stream") in ("true", "True", "1"):
            raw = query.get("starting_after") or "-1"
            try:
                after = int(raw)
            except ValueError:
                raise bad("starting_after", f"Invalid 'starting_after': {raw!r}.") from None
            return stream_response(engine, render, record, after)
        return await render.response(run, record)

    async def cancel(call: Call) -> JSONObject:
        record, run = await visible(call)
        if not record.settings.get("background"):
            raise bad("response_id", "Only background responses can be cancelled.")
        if run.status not in ("cancelled", "cancelling"):
            try:
                run = engine.cancel(run.thread_id, run.id)
            except ApiError:
                run = ctx.store.get_run(run.id) or run
        return await render.response(run, record)

    async def delete(call: Call) -> JSONObject:
        record, run = await visible(call)
        await ctx.store.delete(RESPONSES, record.id)
        return {"id": wire_id("response", run.id), "object": "response", "deleted": True}

    async def input_items(call: Call) -> JSONObject:
        record, run = await visible(call)
        items: list[JSONObject] = []
        for uid in record.input_ids:
            message = await ctx.store.get_message(run.thread_id, uid)
            if message is not None:
                items.append(render.input_message(message))
        return item_page(items, call.request.query_params)

    async def input_tokens(call: Call) -> JSONObject:
        body = call.body
        model = body.get("model") or "default"
        parsed = parse_input(body.get("input"))
        history: list[HistoryItem] = []
        prev = body.get("previous_response_id")
        if prev:
            record, _ = await load(response_uid(str(prev), "previous_response_id"))
            history = thread_history(ctx.store, record.thread_id)
        try:
            backend = (
                ctx.engine.calls.router.resolve(str(model)) if ctx.engine.calls.router else None
            )
        except ModelError as exc:
            raise bad("model", str(exc)) from exc
        if backend is None:
            raise bad("model", "The server has no model routes.")
        items: list[HistoryItem] = [
            *history,
            *(
                ThreadMessage("assistant" if m.role == "assistant" else "user", str(m.content))
                for m in parsed.messages
            ),
        ]
        prompt = build_prompt(
            backend,
            instructions=body.get("instructions") or "",
            additional_instructions="\n\n".join(parsed.developer) or None,
            history=items,
        )
        return {"object": "response.input_tokens", "input_tokens": prompt.tokens}

    r = api.route
    one = "/responses/{response_id}"
    return [
        r("/responses/input_tokens", input_tokens, ["POST"]),
        r("/responses", create, ["POST"]),
        r(one, retrieve, ["GET"]),
        r(one, delete, ["DELETE"]),
        r(f"{one}/cancel", cancel, ["POST"]),
        r(f"{one}/input_items", input_items, ["GET"]),
    ]
