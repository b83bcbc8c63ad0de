"""``ToolCallAccumulator``: messy upstream tool-call deltas in, clean ``ToolCallDelta`` out.

Chat-completions servers disagree about streamed tool calls. Seen in the wild: no ``index``;
every call sent as ``index: 0`` with its own id; the id and name repeated in every fragment; the id
arriving after the name; empty ids; arguments sent as a JSON object instead of text. The
accumulator decides which call each fragment belongs to and emits the form the engine relies on:
the first fragment of each call carries its ``name`` and a unique ``id``, later fragments carry
only ``arguments`` text.

    acc = ToolCallAccumulator()
    for fragment in delta["tool_calls"]:
        for event in acc.feed(fragment): ...
    for event in acc.close(): ...           # releases calls still waiting for an id
    acc.calls                               # the complete ToolCall values
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant_kit.errors import ModelError
from assistant_kit.server.ids import new_call_id
from assistant_kit.server.models.base import ToolCall, ToolCallDelta


@dataclass(slots=True)
class _Call:
    index: int | None  # upstream index
    upstream_id: str | None
    name: str = ""
    arguments: str = ""
    out: int | None = None  # our index, set when released
    id: str = ""
    pending: str = ""  # argument text not yet emitted

    def complete(self) -> bool:
        text = self.arguments.strip()
        if not text.endswith("}"):
            return False
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return False
        return True


class ToolCallAccumulator:
    """Assigns upstream tool-call fragments to calls and re-emits them cleanly."""

    def __init__(self) -> None:
        self._calls: list[_Call] = []
        self._used_ids: set[str] = set()
        self._released = 0

    @property
    def calls(self) -> list[ToolCall]:
        """Every call seen so far, in the order they were released (complete after ``close``)."""
        done = sorted((c for c in self._calls if c.out is not None), key=lambda c: c.out or 0)
        return [ToolCall(c.id, c.name, c.arguments) for c in done]

    def feed(self, fragment: Mapping[str, Any]) -> list[ToolCallDelta]:
        """Take one element of an upstream ``delta.tool_calls`` list."""
        index = fragment.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else None
        upstream_id = fragment.get("id") or None
        function = fragment.get("function") or {}
        if not isinstance(function, Mapping):
            function = {}
        name = function.get("name") or None
        arguments = function.get("arguments")
        if arguments is None:
            arguments = ""
        elif not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)

        events: list[ToolCallDelta] = []
        call = self._target(index, upstream_id, name, arguments)
        if call is None:
            events += self._close_open()
            call = _Call(index, upstream_id, name or self._inherited(index, upstream_id))
            self._calls.append(call)
        if upstream_id and not call.upstream_id:
            call.upstream_id = upstream_id
        if name and not call.name:
            call.name = name
        call.arguments += arguments
        if call.out is not None:
            if arguments:
                events.append(ToolCallDelta(call.out, arguments=arguments))
        else:
            call.pending += arguments
            if call.name and call.upstream_id:
                events += self._release(call)
        return events

    def close(self) -> list[ToolCallDelta]:
        """Release every call still held back; give empty arguments a ``{}``."""
        events = self._close_open()
        for call in self._calls:
            if call.out is not None and not call.arguments.strip():
                call.arguments = "{}"
                events.append(ToolCallDelta(call.out, arguments="{}"))
        return events

    def _target(
        self, index: int | None, upstream_id: str | None, name: str | None, arguments: str
    ) -> _Call | None:
        if upstream_id:
            for call in reversed(self._calls):
                if call.upstream_id == upstream_id and (
                    index is None or call.index is None or call.index == index
                ):
                    return call
        if index is not None:
            candidates = [c for c in self._calls if c.index == index]
        else:
            candidates = self._calls[-1:]
        if not candidates:
            return None
        call = candidates[-1]
        if upstream_id and call.upstream_id and upstream_id != call.upstream_id:
            return None
        if name and call.name and name != call.name:
            return None
        if arguments.strip() and call.complete():
            return None  # valid JSON cannot continue: this is the next call
        return call

    def _inherited(self, index: int | None, upstream_id: str | None) -> str:
        """The name of a call whose name-only fragment was taken as a repeat of the last call."""
        if upstream_id or not self._calls:
            return ""
        last = self._calls[-1]
        return last.name if index is None or index == last.index else ""

    def _close_open(self) -> list[ToolCallDelta]:
        events: list[ToolCallDelta] = []
        for call in self._calls:
            if call.out is None:
                if not call.name:
                    if call.arguments.strip():
                        raise ModelError("the model sent a tool call without a function name")
                    continue
                events += self._release(call)
        return events

    def _release(self, call: _Call) -> list[ToolCallDelta]:
        call_id = call.upstream_id or ""
        if not call_id or call_id in self._used_ids:
            call_id = new_call_id()
        self._used_ids.add(call_id)
        call.id = call_id
        call.out = self._released
        self._released += 1
        first = ToolCallDelta(call.out, arguments=call.pending, name=call.name, id=call.id)
        call.pending = ""
        return [first]
