"""Runs, run steps and run streams as the clients see them, in both dialects.

::

    run = await client.create_run(thread.id, RunParams(assistant_id=bot.id))
    run = await client.wait_run(thread.id, run.id)              # until requires_action or done
    while run.status == "requires_action":
        outputs = [ToolOutput(call.id, my_tools[call.name](**call.args))
                   for call in run.required_tool_calls]         # every pending call, at once
        run = await client.submit_tool_outputs(thread.id, run.id, outputs)
        run = await client.wait_run(thread.id, run.id)

    async for event in client.stream_run(thread.id, RunParams(assistant_id=bot.id)):
        if event.event == "thread.message.delta":
            print(event.text, end="")
        elif event.event == "thread.run.requires_action":
            ...                                                 # event.run.required_tool_calls
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant_kit.api.base import NOT_GIVEN, MessageParams, NotGiven

#: Statuses a run never leaves.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "expired", "incomplete"})


@dataclass(frozen=True, slots=True)
class RunParams:
    """What to send on run create (and thread-and-run); ``NOT_GIVEN`` fields are left out."""

    assistant_id: str
    model: str | NotGiven = NOT_GIVEN
    instructions: str | NotGiven = NOT_GIVEN
    additional_instructions: str | NotGiven = NOT_GIVEN
    additional_messages: Sequence[MessageParams] | NotGiven = NOT_GIVEN
    tools: Sequence[Mapping[str, Any]] | NotGiven = NOT_GIVEN
    metadata: Mapping[str, str] | NotGiven = NOT_GIVEN
    temperature: float | NotGiven = NOT_GIVEN
    top_p: float | NotGiven = NOT_GIVEN
    top_k: int | NotGiven = NOT_GIVEN
    max_tokens: int | NotGiven = NOT_GIVEN
    max_prompt_tokens: int | NotGiven = NOT_GIVEN
    max_completion_tokens: int | NotGiven = NOT_GIVEN
    truncation_strategy: Mapping[str, Any] | NotGiven = NOT_GIVEN
    tool_choice: str | Mapping[str, Any] | NotGiven = NOT_GIVEN
    parallel_tool_calls: bool | NotGiven = NOT_GIVEN
    response_format: str | Mapping[str, Any] | NotGiven = NOT_GIVEN

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is NOT_GIVEN:
                continue
            if f.name == "additional_messages":
                value = [m.body() for m in value]
            elif isinstance(value, Mapping):
                value = json.loads(json.dumps(value))
            elif isinstance(value, Sequence) and not isinstance(value, str):
                value = [dict(v) for v in value]
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A function call the run waits on; ``arguments`` is the model's JSON text."""

    id: str
    name: str
    arguments: str

    @property
    def args(self) -> Any:
        """The arguments parsed (``{}`` when empty; the raw text when it is not JSON)."""
        if not self.arguments.strip():
            return {}
        try:
            return json.loads(self.arguments)
        except ValueError:
            return self.arguments


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """The answer to one pending call (``tool_call_id`` may be empty on DashScope: by position)."""

    tool_call_id: str
    output: str

    def body(self) -> dict[str, str]:
        return {"tool_call_id": self.tool_call_id, "output": self.output}


@dataclass(frozen=True, slots=True)
class RunUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RemoteRun:
    """A run as a target reports it (timestamps in ms)."""

    id: str
    thread_id: str
    assistant_id: str
    status: str
    created_at: int
    model: str = ""
    instructions: str | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    required_tool_calls: tuple[ToolCallRequest, ...] = ()
    last_error: Mapping[str, Any] | None = None
    incomplete_details: Mapping[str, Any] | None = None
    usage: RunUsage | None = None
    started_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def requires_action(self) -> bool:
        return self.status == "requires_action"


@dataclass(frozen=True, slots=True)
class StepToolCall:
    """One tool call in a step, flattened: functions and built-ins alike."""

    id: str
    type: str
    name: str
    arguments: str
    output: str | None


@dataclass(frozen=True, slots=True)
class RemoteRunStep:
    id: str
    run_id: str
    type: str
    status: str
    created_at: int
    step_details: Mapping[str, Any] = field(default_factory=dict)
    usage: RunUsage | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def message_id(self) -> str | None:
        creation = self.step_details.get("message_creation") or {}
        return creation.get("message_id")

    @property
    def tool_calls(self) -> tuple[StepToolCall, ...]:
        return tuple(step_tool_call(c) for c in self.step_details.get("tool_calls") or ())


def step_tool_call(call: Mapping[str, Any]) -> StepToolCall:
    kind = str(call.get("type") or "function")
    inner = call.get(kind) or {}
    if kind == "code_interpreter":
        arguments = str(inner.get("arguments") or inner.get("input") or "")
        output = inner.get("output")
        if output is None:
            logs = [
                o.get("logs", "") for o in inner.get("outputs") or () if o.get("type") == "logs"
            ]
            output = "".join(logs) or None
        return StepToolCall(str(call.get("id") or ""), kind, kind, arguments, output)
    return StepToolCall(
        id=str(call.get("id") or ""),
        type=kind,
        name=str(inner.get("name") or kind),
        arguments=str(inner.get("arguments") or ""),
        output=inner.get("output"),
    )


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event of a run stream.

    ``event`` is the name (``thread.run.completed``, ``thread.message.delta``, ``done``...);
    ``data`` the JSON object as sent (``None`` for ``done``); ``object`` the parsed record for
    snapshot events (``RemoteRun``, ``RemoteRunStep``, ``RemoteMessage``, ``RemoteThread``).
    """

    event: str
    data: Mapping[str, Any] | None = None
    object: Any = None

    @property
    def run(self) -> RemoteRun | None:
        return self.object if isinstance(self.object, RemoteRun) else None

    @property
    def text(self) -> str:
        """The text of a ``thread.message.delta`` (empty for other events)."""
        if self.event != "thread.message.delta" or not self.data:
            return ""
        content = (self.data.get("delta") or {}).get("content") or []
        if isinstance(content, Mapping):
            content = [content]
        return "".join(
            str((p.get("text") or {}).get("value") or "")
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text"
        )


def usage_of(value: Any) -> RunUsage | None:
    if not isinstance(value, Mapping):
        return None
    prompt = int(value.get("prompt_tokens", value.get("input_tokens", 0)) or 0)
    completion = int(value.get("completion_tokens", value.get("output_tokens", 0)) or 0)
    total = int(value.get("total_tokens") or prompt + completion)
    return RunUsage(prompt, completion, total)


def required_calls(run: Mapping[str, Any]) -> tuple[ToolCallRequest, ...]:
    action = run.get("required_action") or {}
    calls = (action.get("submit_tool_outputs") or {}).get("tool_calls") or ()
    return tuple(
        ToolCallRequest(
            id=str(c.get("id") or ""),
            name=str((c.get("function") or {}).get("name") or ""),
            arguments=str((c.get("function") or {}).get("arguments") or ""),
        )
        for c in calls
    )


class SSEParser:
    """Server-sent events from lines; tolerant of both dialects' framing."""

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: list[str] = []
        self.status: int | None = None

    def feed(self, line: str) -> tuple[str, str, int | None] | None:
        """Give one line; returns ``(event, data, status)`` when an event is complete."""
        if not line.strip():
            if not self.data:
                self.event = None
                return None
            out = (self.event or "message", "\n".join(self.data), self.status)
            self.event, self.data, self.status = None, [], None
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value.strip()
        elif name == "data":
            self.data.append(value)
        elif name == "status" and value.strip().isdigit():
            self.status = int(value.strip())
        return None
