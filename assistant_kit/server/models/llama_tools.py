"""Tool calls as JSON for local models: the call schema, its grammar, the transcript, the scanner.

A local model calls a tool by writing ``{"name": <tool>, "arguments": {...}}``; a grammar
built from the tools' parameter schemas makes sure that what it writes parses, and
``CallScanner`` turns the streamed text into the backend contract's ``ToolCallDelta``
fragments. Nothing here needs a loaded model; ``schema_grammar`` needs llama-cpp-python.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from assistant_kit.errors import ModelError
from assistant_kit.server.models.base import ChatMessage, ToolCallDelta

#: How replies that are tool calls begin (plain JSON, a JSON list, Hermes/Qwen-style tags).
CALL_OPENERS = ("{", "[{", "<tool_call>")

_CALL_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')
#: llama-cpp-python's JSON string character rule, and llama.cpp's (no raw control characters).
_LOOSE_CHAR = re.compile(r'^(char ::= )\[\^"\\\\\]', re.MULTILINE)
_STRICT_CHAR = r'[^"\\\x7F\x00-\x1F]'


def tool_call_schema(
    tools: Sequence[Mapping[str, Any]],
    choice: str | Mapping[str, Any],
    *,
    generic_arguments: bool = False,
) -> dict[str, Any]:
    """The JSON Schema of one call to one of ``tools`` (or to the function ``choice`` names)."""
    functions = [t["function"] for t in tools]
    if isinstance(choice, Mapping):
        wanted = choice.get("function", {}).get("name")
        functions = [f for f in functions if f.get("name") == wanted]
        if not functions:
            raise ModelError(
                f"tool_choice names {wanted!r}, which is not among the tools",
                code="invalid_request_error",
            )
    alternatives = []
    for function in functions:
        parameters = function.get("parameters") or {"type": "object"}
        alternatives.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": function["name"]},
                    "arguments": {"type": "object"} if generic_arguments else parameters,
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}


def chat_messages(messages: Sequence[ChatMessage], *, native_tools: bool) -> list[dict[str, Any]]:
    """The transcript as chat-template input.

    Templates that know tools get the OpenAI shape; for the others (SmolLM2's among them) a
    call is written as the JSON the model is asked to produce, and a tool's output as a user
    turn, so any template renders the conversation.
    """
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    out: list[dict[str, Any]] = []
    for message in messages:
        if native_tools:
            item: dict[str, Any] = {"role": message.role, "content": message.content}
            if message.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in message.tool_calls
                ]
            if message.tool_call_id:
                item["tool_call_id"] = message.tool_call_id
            out.append(item)
        elif message.role == "tool":
            name = names.get(message.tool_call_id or "", "the tool")
            out.append({"role": "user", "content": f"Result of {name}: {message.content}"})
        elif message.tool_calls:
            calls = "\n".join(
                json.dumps({"name": c.name, "arguments": _loads_or_text(c.arguments)})
                for c in message.tool_calls
            )
            text = f"{message.content}\n{calls}" if message.content else calls
            out.append({"role": "assistant", "content": text})
        else:
            out.append({"role": message.role, "content": message.content})
    return out


def with_tool_instructions(
    chat: list[dict[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Describe ``tools`` in the system message, for templates that have no tools section."""
    described = [
        {k: t["function"][k] for k in ("name", "description", "parameters") if k in t["function"]}
        for t in tools
    ]
    note = (
        "You can call these functions:\n"
        + "\n".join(json.dumps(d) for d in described)
        + '\nTo call one, reply with only a JSON object: {"name": <function name>, '
        '"arguments": {<argument values>}}.'
    )
    if chat and chat[0]["role"] == "system":
        return [{"role": "system", "content": f"{chat[0]['content']}\n\n{note}"}, *chat[1:]]
    return [{"role": "system", "content": note}, *chat]


def schema_grammar(schema: Mapping[str, Any]) -> Any:
    """A llama.cpp grammar for JSON values matching ``schema``.

    llama-cpp-python's converter lets raw control characters into strings, which no JSON
    parser accepts; its ``char`` rule is tightened here the way llama.cpp's own one reads.
    """
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(schema))
    gbnf = _LOOSE_CHAR.sub(lambda match: match.group(1) + _STRICT_CHAR, gbnf)
    return LlamaGrammar.from_string(gbnf, verbose=False)


def _loads_or_text(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


class CallScanner:
    """Turns the streamed text of one ``{"name": .., "arguments": {..}}`` into call fragments.

    The grammar guarantees the shape; the scanner only has to find where the name ends and
    where the arguments object closes (tracking strings and nesting), so each fragment of the
    arguments goes out as it arrives and nothing after the object leaks into them.
    """

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.started = False
        self._head = ""
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the arguments are complete (whatever the model writes after them is dropped)."""
        return self._done

    def feed(self, text: str) -> Iterator[ToolCallDelta]:
        if self._done:
            return
        if not self.started:
            self._head += text
            match = _CALL_HEAD.match(self._head)
            if match is None:
                return
            self.started = True
            name = json.loads(f'"{match.group(1)}"')
            yield ToolCallDelta(index=0, name=name, id=self.call_id)
            text = self._head[match.end() :]
        end = self._scan(text)
        piece = text[:end]
        if piece:
            yield ToolCallDelta(index=0, arguments=piece)

    def _scan(self, text: str) -> int:
        """Advance over ``text``; return how much of it belongs to the arguments."""
        for i, char in enumerate(text):
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif self._depth == 0 and char in ",}":  # the end of a scalar value
                self._done = True
                return i
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._done = True
                    return i + 1
        return len(text)
