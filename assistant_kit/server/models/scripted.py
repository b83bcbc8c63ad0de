"""``ScriptedBackend``: the sanctioned deterministic test double for model output.

A script is an ordered list of rules. For each model call the backend looks at the conversation,
takes the first rule that matches, and streams that rule's reply text or tool calls exactly as a
real backend would: text in several ``TextDelta`` fragments, each tool call as a first
``ToolCallDelta`` with its name and id followed by argument fragments, then one ``Finish`` with a
usage estimate. Nothing is random except the tool-call ids, so tests and benchmarks can rely on it.

The script file (YAML; ``kit.yaml``: ``server.models.X: {backend: scripted, script: path}``)::

    default: "Sorry, I can only talk about the weather."   # optional fallback reply
    delay_ms: 0                                            # optional latency per model call
    rules:
      - user: "(?i)weather in (?P<city>\\w+) and (?P<other>\\w+)"
        tool_calls:                                        # parallel calls
          - {name: get_weather, arguments: {city: "{city}"}}
          - {name: get_weather, arguments: {city: "{other}"}}
      - user: "(?i)order (\\d+)"
        tool_calls:
          - {name: get_order, arguments: '{"id": {1}}'}    # JSON text template: id is a number
      - after_tool: get_weather                            # the conversation ends with its outputs
        reply: "The weather is {output}."
      - user: "(?i)^(hi|hello)"
        reply: "Hello! Ask me about the weather."

Rule keys:

- ``user``: a regular expression searched (``re.search``) in the text of the last user message.
- ``after_tool``: ``true`` (any tool), a tool name, or a list of names. The rule then matches only
  when the conversation ends with tool outputs (of one of those tools). A rule without it matches
  only when the conversation does *not* end with tool outputs.
- exactly one of ``reply`` (a template) or ``tool_calls`` (a list of ``{name, arguments}``;
  ``arguments`` is a mapping whose string values are templates, or a JSON text template).
- ``cut_after``: a number of characters. The stream stops there, without its ``Finish``, as a
  backend that died mid-reply would: the reply's text (or the calls' arguments) up to that point,
  then nothing. The run must end ``failed``; this is how tests check that it does.

Templates replace ``{placeholder}``: ``user`` (the last user text), ``output`` (the latest tool
outputs joined by ", "), ``output[N]``, ``name`` / ``name[N]`` (the tools those outputs answer),
``arguments`` / ``arguments[N]`` (their arguments), ``0`` (the whole ``user`` match), the regex's
numbered groups ``1``, ``2``... and its named groups. ``{{x}}`` writes a literal ``{x}``; other
braces (JSON) are left alone. An unknown placeholder is an error when the script is loaded.

When no rule matches, the ``default`` reply is used; without one it is ``OK.`` and, right after
tool outputs, ``{output}``. The request is honoured as a model would: ``tool_choice: none`` skips
tool-call rules, ``required`` or a named function skips reply rules (calling the named or first
offered tool with ``{}`` if no rule calls it), rules that call a tool the request does not offer
are skipped, ``parallel_tool_calls: false`` keeps the first call, and ``max_tokens`` truncates the
output and finishes with ``length``.

From Python::

    backend = ScriptedBackend(
        [Rule(user="(?i)weather", tool_calls=(ScriptedCall("get_weather", {"city": "Paris"}),)),
         Rule(after_tool=True, reply="The weather is {output}.")],
        default="Hello!",
    )
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant_kit.errors import ConfigError, ModelError
from assistant_kit.server.ids import new_call_id
from assistant_kit.server.models.base import (
    Capabilities,
    ChatMessage,
    Finish,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PLACEHOLDER = re.compile(r"\{\{(\w+(?:\[\d+\])?)\}\}|\{(\w+)(?:\[(\d+)\])?\}")
_LISTS = ("output", "name", "arguments")
_FIXED = (*_LISTS, "user", "0")
_RULE_KEYS = {"user", "after_tool", "reply", "tool_calls", "cut_after"}
_SCRIPT_KEYS = {"rules", "default", "delay_ms"}


def count_text_tokens(text: str) -> int:
    """The scripted tokenizer: one token per word and per punctuation mark."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """A tool call a rule makes; ``arguments`` is a mapping or a JSON text template."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of a script: when it matches (``user``, ``after_tool``) and what the model says."""

    user: str | None = None
    after_tool: bool | str | tuple[str, ...] | None = None
    reply: str | None = None
    tool_calls: tuple[ScriptedCall, ...] = ()
    #: Stop the stream after this many characters, without a ``Finish`` (a cut-off backend).
    cut_after: int | None = None


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    pattern: re.Pattern[str] | None
    tools: frozenset[str] | None  # after_tool names; empty set = any tool; None = user phase


@dataclass(frozen=True, slots=True)
class _Situation:
    user: str
    outputs: tuple[str, ...]
    names: tuple[str, ...]
    arguments: tuple[str, ...]

    @property
    def after_tools(self) -> bool:
        return bool(self.outputs)


class ScriptedBackend(ModelBackend):
    """Deterministic replies and tool calls chosen by rules on the conversation (a test double)."""

    kind = "scripted"

    def __init__(
        self,
        rules: Iterable[Rule | Mapping[str, Any]] = (),
        *,
        default: str | None = None,
        delay_ms: float = 0,
        chunk_chars: int = 12,
        context_window: int = 8192,
        source: str = "<rules>",
        _places: Sequence[str] = (),
    ) -> None:
        self.default = default
        self.delay_ms = float(delay_ms)
        self.chunk_chars = max(1, chunk_chars)
        self._capabilities = Capabilities(context_window=context_window)
        self._rules = []
        for i, rule in enumerate(rules):
            where = _places[i] if i < len(_places) else f"{source}: rule {i + 1}"
            if not isinstance(rule, Rule):
                rule = _rule_from_mapping(rule, where)
            self._rules.append(_compile(rule, where))
        if default is not None:
            _check_template(default, set(), f"{source}: default")
        if self.delay_ms < 0:
            raise ConfigError(f"{source}: delay_ms must be >= 0")

    @classmethod
    def from_file(
        cls, path: str | Path, *, delay_ms: float | None = None, **options: Any
    ) -> ScriptedBackend:
        """Load a YAML script (see the module docstring); ``delay_ms`` overrides the file's."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
            lines = _rule_lines(text)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the model script: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if isinstance(data, list):
            data = {"rules": data}
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: a model script is a mapping with `rules` or a list of rules"
            )
        unknown = sorted(set(data) - _SCRIPT_KEYS)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}")
        rules = data.get("rules") or []
        if not isinstance(rules, list):
            raise ConfigError(f"{path}: `rules` must be a list")
        places = [
            f"{path}:{lines[i] if i < len(lines) else 1}: rule {i + 1}" for i in range(len(rules))
        ]
        default = data.get("default")
        if default is not None and not isinstance(default, str):
            raise ConfigError(f"{path}: `default` must be a string")
        delay = data.get("delay_ms", 0) if delay_ms is None else delay_ms
        if not isinstance(delay, (int, float)) or isinstance(delay, bool):
            raise ConfigError(f"{path}: `delay_ms` must be a number")
        return cls(
            rules, default=default, delay_ms=delay, source=str(path), _places=places, **options
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Scripted tokenizer: words and punctuation, plus 4 per message."""
        total = 0
        for m in messages:
            total += 4 + count_text_tokens(m.content)
            total += sum(
                count_text_tokens(c.name) + count_text_tokens(c.arguments) for c in m.tool_calls
            )
        return total

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)
        situation = _situation(request.messages)
        usage_in = self.count_tokens(request.messages)
        reply, calls, cut = self._choose(request, situation)
        if cut is not None:
            for event in _cut_off(reply, calls, cut, self.chunk_chars):
                yield event
            return
        budget = request.max_tokens
        if calls:
            truncated = False
            used = 0
            for index, (name, args) in enumerate(calls):
                cost = count_text_tokens(name) + count_text_tokens(args)
                if budget is not None and used + cost > budget:
                    args = _cut(args, max(0, budget - used - count_text_tokens(name)))
                    truncated = True
                used += count_text_tokens(name) + count_text_tokens(args)
                yield ToolCallDelta(index=index, name=name, id=new_call_id())
                for piece in _chunks(args, self.chunk_chars):
                    yield ToolCallDelta(index=index, arguments=piece)
                if truncated:
                    break
            yield Finish("length" if truncated else "tool_calls", Usage(usage_in, used))
            return
        truncated = budget is not None and count_text_tokens(reply) > budget
        if truncated:
            reply = _cut(reply, max(0, budget or 0))
        for piece in _chunks(reply, self.chunk_chars):
            yield TextDelta(piece)
        yield Finish("length" if truncated else "stop", Usage(usage_in, count_text_tokens(reply)))

    def _choose(
        self, request: ModelRequest, situation: _Situation
    ) -> tuple[str, list[tuple[str, str]], int | None]:
        offered = _offered(request.tools)
        choice = request.tool_choice
        forced = _forced_name(choice)
        calls_only = forced is not None or choice == "required"
        for compiled in self._rules:
            match = _matches(compiled, situation)
            if match is None:
                continue
            rule = compiled.rule
            values = _values(situation, match)
            if rule.reply is not None:
                if calls_only:
                    continue
                return _render(rule.reply, values), [], rule.cut_after
            if choice == "none" or any(c.name not in offered for c in rule.tool_calls):
                continue
            chosen = [c for c in rule.tool_calls if forced is None or c.name == forced]
            if not chosen:
                continue
            if not request.parallel_tool_calls:
                chosen = chosen[:1]
            calls = [(c.name, _render_arguments(c.arguments, values)) for c in chosen]
            return "", calls, rule.cut_after
        if calls_only and offered:
            return "", [(forced or next(iter(offered)), "{}")], None
        if self.default is not None:
            return _render(self.default, _values(situation, None)), [], None
        return (", ".join(situation.outputs) if situation.after_tools else "OK."), [], None


def _offered(tools: Sequence[Mapping[str, Any]]) -> dict[str, None]:
    names: dict[str, None] = {}  # a dict keeps the offered order
    for tool in tools:
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool.get("name")
        if isinstance(name, str):
            names[name] = None
    return names


def _forced_name(choice: str | Mapping[str, Any]) -> str | None:
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
    return None


def _situation(messages: Sequence[ChatMessage]) -> _Situation:
    user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    tail: list[ChatMessage] = []
    for m in reversed(messages):
        if m.role != "tool":
            break
        tail.append(m)
    tail.reverse()
    if not tail:
        return _Situation(user, (), (), ())
    start = len(messages) - len(tail)
    caller = messages[start - 1] if start > 0 and messages[start - 1].role == "assistant" else None
    calls = caller.tool_calls if caller else ()
    by_id = {c.id: c for c in calls}
    names, arguments = [], []
    for position, m in enumerate(tail):
        call = by_id.get(m.tool_call_id or "")
        if call is None and position < len(calls):
            call = calls[position]
        names.append(call.name if call else "")
        arguments.append(call.arguments if call else "")
    return _Situation(user, tuple(m.content for m in tail), tuple(names), tuple(arguments))


def _matches(compiled: _Compiled, situation: _Situation) -> re.Match[str] | bool | None:
    if compiled.tools is None:
        if situation.after_tools:
            return None
    else:
        if not situation.after_tools:
            return None
        if compiled.tools and not compiled.tools.intersection(situation.names):
            return None
    if compiled.pattern is None:
        return True
    return compiled.pattern.search(situation.user)


Values = dict[str, str | tuple[str, ...]]


def _values(situation: _Situation, match: re.Match[str] | bool | None) -> Values:
    values: Values = {
        "user": situation.user,
        "output": situation.outputs,
        "name": situation.names,
        "arguments": situation.arguments,
        "0": situation.user,
    }
    if isinstance(match, re.Match):
        values["0"] = match.group(0)
        for i, group in enumerate(match.groups(), start=1):
            values[str(i)] = group or ""
        for key, group in match.groupdict().items():
            values[key] = group or ""
    return values


def _render(template: str, values: Values) -> str:
    def substitute(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return "{" + m.group(1) + "}"
        value = values.get(m.group(2), "")
        if isinstance(value, tuple):
            if m.group(3) is None:
                return ", ".join(value)
            index = int(m.group(3))
            return value[index] if index < len(value) else ""
        return value

    return _PLACEHOLDER.sub(substitute, template)


def _render_arguments(arguments: Mapping[str, Any] | str, values: Values) -> str:
    if isinstance(arguments, str):
        text = _render(arguments, values)
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"scripted tool-call arguments are not JSON: {text!r}") from exc
        if not isinstance(parsed, dict):
            raise ModelError(f"scripted tool-call arguments are not a JSON object: {text!r}")
        return text

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return _render(value, values)
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(arguments), ensure_ascii=False)


def _chunks(text: str, size: int) -> Iterable[str]:
    """Split at word boundaries into pieces of about ``size`` characters."""
    piece = ""
    for word in re.findall(r"\s*\S+|\s+", text):
        piece += word
        if len(piece) >= size:
            yield piece
            piece = ""
    if piece:
        yield piece


def _cut_off(
    reply: str, calls: Sequence[tuple[str, str]], limit: int, size: int
) -> Iterable[ModelEvent]:
    """The first ``limit`` characters of the reply (or of the calls' arguments), no ``Finish``."""
    if not calls:
        for piece in _chunks(reply[:limit], size):
            yield TextDelta(piece)
        return
    left = limit
    for index, (name, args) in enumerate(calls):
        yield ToolCallDelta(index=index, name=name, id=new_call_id())
        for piece in _chunks(args[:left], size):
            yield ToolCallDelta(index=index, arguments=piece)
        left -= len(args)
        if left <= 0:
            return


def _cut(text: str, tokens: int) -> str:
    if tokens <= 0:
        return ""
    for i, m in enumerate(_TOKEN.finditer(text), start=1):
        if i == tokens:
            return text[: m.end()]
    return text


def _compile(rule: Rule, where: str) -> _Compiled:
    if (rule.reply is None) == (not rule.tool_calls):
        raise ConfigError(f"{where}: give exactly one of `reply` or `tool_calls`")
    pattern = None
    if rule.user is not None:
        try:
            pattern = re.compile(rule.user)
        except re.error as exc:
            raise ConfigError(f"{where}: bad `user` regex {rule.user!r}: {exc}") from exc
    groups: set[str] = set()
    if pattern is not None:
        groups = set(pattern.groupindex) | {str(i) for i in range(1, pattern.groups + 1)}
    if rule.reply is not None:
        _check_template(rule.reply, groups, where)
    for call in rule.tool_calls:
        if not call.name:
            raise ConfigError(f"{where}: a tool call needs a `name`")
        _check_arguments(call.arguments, groups, where)
    tools: frozenset[str] | None
    after = rule.after_tool
    if after is None or after is False:
        tools = None
    elif after is True or after == "*":
        tools = frozenset()
    elif isinstance(after, str):
        tools = frozenset({after})
    else:
        tools = frozenset(after)
    return _Compiled(rule, pattern, tools)


def _check_template(template: str, groups: set[str], where: str) -> None:
    for m in _PLACEHOLDER.finditer(template):
        name, index = m.group(2), m.group(3)
        if name is None:
            continue
        if name not in groups and name not in _FIXED:
            known = ", ".join(sorted(groups | set(_FIXED)))
            raise ConfigError(f"{where}: unknown placeholder {{{name}}} (known: {known})")
        if index is not None and name not in _LISTS:
            raise ConfigError(
                f"{where}: {{{name}[{index}]}}: only output, name and arguments take an index"
            )


def _check_arguments(arguments: Any, groups: set[str], where: str) -> None:
    if isinstance(arguments, str):
        _check_template(arguments, groups, where)
        if not _PLACEHOLDER.search(arguments):
            try:
                parsed = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where}: `arguments` text is not JSON: {exc}") from exc
            if not isinstance(parsed, dict):
                raise ConfigError(f"{where}: `arguments` must be a JSON object")
    elif isinstance(arguments, Mapping):
        for value in arguments.values():
            if isinstance(value, (str, Mapping, list)):
                _check_arguments_value(value, groups, where)
    else:
        raise ConfigError(f"{where}: `arguments` must be a mapping or JSON text")


def _check_arguments_value(value: Any, groups: set[str], where: str) -> None:
    if isinstance(value, str):
        _check_template(value, groups, where)
    elif isinstance(value, Mapping):
        for v in value.values():
            _check_arguments_value(v, groups, where)
    elif isinstance(value, list):
        for v in value:
            _check_arguments_value(v, groups, where)


def _rule_from_mapping(data: Any, where: str) -> Rule:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a rule is a mapping")
    unknown = sorted(set(map(str, data)) - _RULE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} "
            f"(a rule has {', '.join(sorted(_RULE_KEYS))})"
        )
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise ConfigError(f"{where}: `user` must be a regex string")
    after = data.get("after_tool")
    if isinstance(after, list):
        if not all(isinstance(a, str) for a in after):
            raise ConfigError(f"{where}: `after_tool` names must be strings")
        after = tuple(after)
    elif after is not None and not isinstance(after, (bool, str)):
        raise ConfigError(f"{where}: `after_tool` is true, a tool name or a list of names")
    reply = data.get("reply")
    if reply is not None and not isinstance(reply, str):
        reply = json.dumps(reply) if isinstance(reply, (dict, list)) else str(reply)
    raw_calls = data.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ConfigError(f"{where}: `tool_calls` must be a list of {{name, arguments}}")
    calls = []
    for call in raw_calls:
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
            raise ConfigError(f"{where}: each tool call needs a string `name`")
        extra = sorted(set(map(str, call)) - {"name", "arguments"})
        if extra:
            raise ConfigError(f"{where}: unknown tool-call key(s) {', '.join(extra)}")
        arguments = call.get("arguments")
        calls.append(ScriptedCall(call["name"], {} if arguments is None else arguments))
    cut_after = data.get("cut_after")
    if cut_after is not None and (
        not isinstance(cut_after, int) or isinstance(cut_after, bool) or cut_after < 0
    ):
        raise ConfigError(f"{where}: `cut_after` must be a number of characters (0 or more)")
    return Rule(
        user=user, after_tool=after, reply=reply, tool_calls=tuple(calls), cut_after=cut_after
    )


def _rule_lines(text: str) -> list[int]:
    """1-based line of each rule in a script, for error messages."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if k.value == "rules"), None)
    if isinstance(node, yaml.SequenceNode):
        return [item.start_mark.line + 1 for item in node.value]
    return []
