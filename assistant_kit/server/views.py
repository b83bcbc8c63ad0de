"""Runs and run steps on the wire, per dialect: objects, usage, tool calls, deltas.

OpenAI: seconds, ``usage`` as prompt/completion tokens, built-in calls other than
code_interpreter shown as functions, ``truncation_strategy`` echoed as ``{"type": "auto"}`` when
unset. DashScope: milliseconds, ``usage`` with both ``input/output_tokens`` and
``prompt/completion_tokens``, built-in calls as ``{type: T, T: {arguments, output}}`` and never a
non-empty ``code_interpreter.outputs`` (the SDK crashes on one).
"""

from __future__ import annotations

from typing import Any

from assistant_kit.server.envelopes import DASHSCOPE, OPENAI, Dialect
from assistant_kit.server.store.records import TERMINAL, RunRecord, StepRecord
from assistant_kit.server.tools.plugins import public_tools

JSONObject = dict[str, Any]


def usage_object(dialect: Dialect, usage: dict[str, int] | None) -> JSONObject | None:
    if usage is None:
        return None
    prompt = int(usage.get("prompt_tokens", 0))
    completion = int(usage.get("completion_tokens", 0))
    body: JSONObject = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if dialect is DASHSCOPE:
        body.update(input_tokens=prompt, output_tokens=completion)
    return body


def required_action(dialect: Dialect, run: RunRecord) -> JSONObject | None:
    if run.status != "requires_action" or not run.required_action:
        return None
    calls = [
        {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"]},
        }
        for c in run.required_action.get("tool_calls", [])
    ]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}


def run_object(dialect: Dialect, run: RunRecord) -> JSONObject:
    d = dialect
    body: JSONObject = {
        "id": d.id("run", run.id),
        "object": "thread.run",
        "created_at": d.ts(run.created_at),
        "thread_id": d.id("thread", run.thread_id),
        "assistant_id": d.id("assistant", run.assistant_id),
        "status": run.status,
        "required_action": required_action(d, run),
        "last_error": run.last_error,
        "incomplete_details": run.incomplete_details,
        "started_at": d.ts(run.started_at),
        "expires_at": None if run.status in TERMINAL else d.ts(run.expires_at),
        "cancelled_at": d.ts(run.cancelled_at),
        "failed_at": d.ts(run.failed_at),
        "completed_at": d.ts(run.completed_at),
        "model": run.model,
        "instructions": run.instructions,
        "tools": public_tools(run.tools),
        "metadata": run.metadata,
        "usage": usage_object(d, run.usage),
        "temperature": run.temperature,
        "top_p": run.top_p,
        "max_prompt_tokens": run.max_prompt_tokens,
        "max_completion_tokens": run.max_completion_tokens,
        "tool_choice": run.tool_choice if run.tool_choice is not None else "auto",
        "parallel_tool_calls": bool(run.parallel_tool_calls),
        "response_format": run.response_format if run.response_format is not None else "auto",
    }
    if d is OPENAI:
        body["truncation_strategy"] = run.truncation_strategy or {
            "type": "auto",
            "last_messages": None,
        }
    else:
        body.update(
            file_ids=run.file_ids,
            top_k=run.top_k,
            max_tokens=run.max_tokens,
            truncation_strategy=run.truncation_strategy,
            additional_instructions=run.additional_instructions,
        )
    return body


def tool_call_object(dialect: Dialect, call: JSONObject) -> JSONObject:
    """One neutral tool call entry of a step in ``dialect``'s shape."""
    shapes = call.get("shapes")
    if isinstance(shapes, dict) and isinstance(shapes.get(dialect.name), dict):
        shape: JSONObject = shapes[dialect.name]
        return shape
    kind = call.get("type", "function")
    output = call.get("output")
    if kind == "function" or (dialect is OPENAI and kind != "code_interpreter"):
        return {
            "id": call["id"],
            "type": "function",
            "function": {
                "name": call.get("name", ""),
                "arguments": call.get("arguments", ""),
                "output": output,
            },
        }
    if kind == "code_interpreter":
        code = _code_input(call.get("arguments", ""))
        if dialect is OPENAI:
            outputs: list[JSONObject] = []
            logs = call.get("logs") or ("" if output is None else str(output))
            if logs:
                outputs.append({"type": "logs", "logs": logs})
            outputs.extend(
                {"type": "image", "image": {"file_id": f}} for f in call.get("images", [])
            )
            return {
                "id": call["id"],
                "type": "code_interpreter",
                "code_interpreter": {"input": code, "outputs": outputs},
            }
        return {
            "id": call["id"],
            "type": "code_interpreter",
            "code_interpreter": {
                "arguments": call.get("arguments", ""),
                "input": code,
                "output": output,
                "logs": call.get("logs", ""),
                "outputs": [],
            },
        }
    return {
        "id": call["id"],
        "type": kind,
        kind: {"arguments": call.get("arguments", ""), "output": output},
    }


def _code_input(arguments: str) -> str:
    import json

    try:
        parsed = json.loads(arguments) if arguments else {}
    except ValueError:
        return arguments
    if isinstance(parsed, dict):
        for key in ("code", "input", "source"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return arguments


def step_details(dialect: Dialect, step: StepRecord) -> JSONObject:
    details = step.step_details
    if details.get("type") == "message_creation":
        message_id = details.get("message_creation", {}).get("message_id")
        return {
            "type": "message_creation",
            "message_creation": {"message_id": dialect.id("message", message_id)},
        }
    return {
        "type": "tool_calls",
        "tool_calls": [tool_call_object(dialect, c) for c in details.get("tool_calls", [])],
    }


def step_object(dialect: Dialect, step: StepRecord) -> JSONObject:
    d = dialect
    return {
        "id": d.id("step", step.id),
        "object": "thread.run.step",
        "created_at": d.ts(step.created_at),
        "run_id": d.id("run", step.run_id),
        "assistant_id": d.id("assistant", step.assistant_id),
        "thread_id": d.id("thread", step.thread_id),
        "type": step.type,
        "status": step.status,
        "cancelled_at": d.ts(step.cancelled_at),
        "completed_at": d.ts(step.completed_at),
        "expired_at": d.ts(step.expired_at),
        "failed_at": d.ts(step.failed_at),
        "last_error": step.last_error,
        "step_details": step_details(d, step),
        "usage": usage_object(d, step.usage),
        "metadata": step.metadata,
    }


def message_delta(dialect: Dialect, data: JSONObject) -> JSONObject:
    text: JSONObject = {"value": data["text"]}
    if data.get("first") or dialect is DASHSCOPE:
        text["annotations"] = []
    if dialect is DASHSCOPE:
        delta: JSONObject = {
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "file_ids": [],
        }
    else:
        delta = {"content": [{"index": 0, "type": "text", "text": text}]}
    return {
        "id": dialect.id("message", data["id"]),
        "object": "thread.message.delta",
        "delta": delta,
    }


def step_delta(dialect: Dialect, data: JSONObject) -> JSONObject:
    """A tool-call fragment: id, type and name only in the first one of each call."""
    call = data["call"]
    kind = call.get("type", "function")
    entry: JSONObject = {"index": data["index"]}
    if data.get("first"):
        entry["id"] = call["id"]
    if kind == "function" or (dialect is OPENAI and kind != "code_interpreter"):
        entry["type"] = "function"
        function: JSONObject = {"arguments": call.get("arguments", "")}
        if data.get("first"):
            function = {"name": call.get("name", ""), "arguments": "", "output": None}
        entry["function"] = function
    elif kind == "code_interpreter":
        entry["type"] = "code_interpreter"
        entry["code_interpreter"] = {"input": "", "outputs": []}
    else:
        entry["type"] = kind
        entry[kind] = {"arguments": "", "output": None}
    return {
        "id": dialect.id("step", data["id"]),
        "object": "thread.run.step.delta",
        "delta": {"step_details": {"type": "tool_calls", "tool_calls": [entry]}},
    }
