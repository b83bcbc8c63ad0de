"""A Responses API request as a run: tools, tool choice, text format, input items."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from assistant_kit.errors import ApiError
from assistant_kit.server.ids import parse_id
from assistant_kit.server.services import MessageInput

JSONObject = dict[str, Any]


def bad(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, code, message, param=param)


def wire_id(kind: str, uid: str) -> str:
    return {"response": "resp_", "conversation": "conv_", "message": "msg_"}[kind] + uid


def response_uid(value: str, param: str = "response_id") -> str:
    uid = parse_id("response", value) or parse_id("run", value)
    if uid is None:
        raise ApiError(404, "not_found", f"Response with id '{value}' not found.", param=param)
    return uid


# -- request -> run ----------------------------------------------------------------------------


def run_tools(tools: Any) -> list[JSONObject]:
    """Responses tools (flat function entries) as the run keeps them (Assistants form)."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad("tools", "Invalid 'tools': expected an array.", "invalid_type")
    out: list[JSONObject] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, Mapping) else type(tool).__name__
            raise bad(f"tools[{i}]", f"Tool type '{kind}' is not supported on this server yet.")
        if not isinstance(tool.get("name"), str):
            raise bad(f"tools[{i}].name", "Missing required parameter: 'tools[{i}].name'.")
        function = {
            k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool
        }
        out.append({"type": "function", "function": function})
    return out


def shown_tools(tools: list[JSONObject]) -> list[JSONObject]:
    """Run tools (Assistants form) as a response shows them: the function tools, flat."""
    return [
        {"type": "function", **t["function"]}
        for t in tools
        if t.get("type") == "function" and isinstance(t.get("function"), Mapping)
    ]


def run_tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def run_response_format(text: Any) -> Any:
    """``text.format`` as the run's ``response_format``."""
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise bad("text.format.type", f"Unsupported text format type {fmt.get('type')!r}.")


def _part_text(part: Any, where: str) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and part.get("type") in ("input_text", "output_text", "text"):
        return str(part.get("text") or "")
    kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
    raise bad(where, f"Content part type '{kind}' is not supported on this server yet.")


@dataclasses.dataclass(slots=True)
class ParsedInput:
    """A request's ``input``: messages to add, extra instructions, outputs for pending calls."""

    messages: list[MessageInput] = dataclasses.field(default_factory=list)
    developer: list[str] = dataclasses.field(default_factory=list)
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_input(value: Any) -> ParsedInput:
    parsed = ParsedInput()
    if value is None:
        return parsed
    if isinstance(value, str):
        parsed.messages.append(MessageInput(content=value))
        return parsed
    if not isinstance(value, list):
        raise bad("input", "Invalid 'input': expected a string or an array.", "invalid_type")
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            raise bad(where, f"Invalid '{where}': expected an object.", "invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if isinstance(content, str):
                text = content
            elif isinstance(content, list):
                text = "".join(
                    _part_text(p, f"{where}.content[{j}]") for j, p in enumerate(content)
                )
            else:
                raise bad(f"{where}.content", f"Missing required parameter: '{where}.content'.")
            if role in ("system", "developer"):
                parsed.developer.append(text)
            elif role in ("user", "assistant"):
                parsed.messages.append(MessageInput(content=text, role=str(role)))
            else:
                raise bad(f"{where}.role", f"Invalid '{where}.role': {role!r}.")
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = "".join(_part_text(p, f"{where}.output") for p in output or [])
            parsed.outputs[str(item.get("call_id"))] = output
        elif kind in ("function_call", "reasoning"):
            # An earlier output item sent back: with previous_response_id it is already in the
            # thread's history.
            continue
        else:
            raise bad(f"{where}.type", f"Input item type '{kind}' is not supported yet.")
    return parsed
