"""The transcript a run sends to its model, and how it is cut to fit.

Pure functions over small records; the run engine feeds them what it stored::

    history = [
        ThreadMessage("user", "What is the weather in Paris?"),
        ToolStep(calls=(ToolCall("call_1", "get_weather", '{"city":"Paris"}'),), outputs=("21C",)),
        ThreadMessage("assistant", "It is 21C in Paris."),
        ThreadMessage("user", "And in London?"),
    ]
    prompt = build_prompt(backend, instructions="Be brief.", history=history,
                          truncation=Truncation.from_api(run_truncation_strategy),
                          max_prompt_tokens=run_max_prompt_tokens)
    if prompt.incomplete_reason:            # still over max_prompt_tokens: end the run incomplete
        ...
    request = ModelRequest(model=..., messages=prompt.messages, ...)

``history`` is the thread in chronological order: its messages (``ThreadMessage``) and the tool
steps of its runs (``ToolStep``: one model turn's tool calls with the outputs they got). A tool step
becomes an assistant message with ``tool_calls`` followed by one ``tool`` message per output, and
truncation treats that group as one unit, so a call is never separated from its output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from assistant_kit.server.models.base import ChatMessage, ToolCall

if TYPE_CHECKING:
    from assistant_kit.server.models.base import ModelBackend

#: Tokens kept free for the reply when ``auto`` fits the context window and no reserve is given.
DEFAULT_RESERVE = 1024


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """A stored thread message, its content flattened to text."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One model turn that called tools, with the outputs submitted for them (by position).

    A call whose output is missing or ``None`` (never answered) is left out of the transcript;
    ``content`` is any text the model wrote alongside the calls.
    """

    calls: tuple[ToolCall, ...]
    outputs: tuple[str | None, ...] = ()
    content: str = ""


HistoryItem = ThreadMessage | ToolStep


@dataclass(frozen=True, slots=True)
class Truncation:
    """A run's ``truncation_strategy``: ``auto``, or only the ``last_messages`` newest messages."""

    type: Literal["auto", "last_messages"] = "auto"
    last_messages: int | None = None

    @classmethod
    def from_api(cls, value: Mapping[str, Any] | None) -> Truncation:
        """Read the wire form ``{"type": ..., "last_messages": N}`` (``None`` means ``auto``)."""
        if not value:
            return cls()
        if value.get("type") == "last_messages" and value.get("last_messages") is not None:
            return cls("last_messages", int(value["last_messages"]))
        return cls()


@dataclass(frozen=True, slots=True)
class Prompt:
    """The transcript to send, its token count, and whether it still exceeds max_prompt_tokens."""

    messages: tuple[ChatMessage, ...]
    tokens: int
    #: History items (messages and tool steps) left out by truncation.
    dropped: int = 0
    #: ``"max_prompt_tokens"`` when the prompt still exceeds it: end the run ``incomplete``.
    incomplete_reason: Literal["max_prompt_tokens"] | None = None


def system_message(instructions: str | None, additional: str | None = None) -> ChatMessage | None:
    """Instructions plus additional_instructions as one system message (``None`` if both empty)."""
    text = "\n\n".join(part for part in (instructions, additional) if part)
    return ChatMessage("system", text) if text else None


def render_item(item: HistoryItem, position: int = 0) -> list[ChatMessage]:
    """The chat messages for one history item (empty when a tool step has no answered call).

    ``position`` makes ids for calls stored without one, so calls and outputs still pair up.
    """
    if isinstance(item, ThreadMessage):
        return [ChatMessage(item.role, item.content)]
    calls: list[ToolCall] = []
    outputs: list[ChatMessage] = []
    for j, call in enumerate(item.calls):
        output = item.outputs[j] if j < len(item.outputs) else None
        if output is None:
            continue
        if not call.id:
            call = ToolCall(f"call_{position}_{j}", call.name, call.arguments)
        calls.append(call)
        outputs.append(ChatMessage("tool", output, tool_call_id=call.id))
    if not calls:
        return []
    return [ChatMessage("assistant", item.content, tool_calls=tuple(calls)), *outputs]


def build_prompt(
    backend: ModelBackend,
    *,
    instructions: str | None,
    history: Sequence[HistoryItem],
    additional_instructions: str | None = None,
    truncation: Truncation | None = None,
    max_prompt_tokens: int | None = None,
    reserve_tokens: int | None = None,
    context_window: int | None = None,
) -> Prompt:
    """Build and truncate the transcript for one model call, counting with ``backend``.

    ``last_messages N`` keeps the N newest thread messages and the tool steps after the oldest of
    them. ``auto`` drops the oldest history (never the system message, nor the newest user message
    and what follows it) until the prompt fits the smaller of ``max_prompt_tokens`` and the
    backend's context window minus ``reserve_tokens`` (default: the smaller of 1024 and a quarter
    of the window), then drops leading non-user items so the kept history opens with a user turn.
    """
    truncation = truncation or Truncation()
    system = system_message(instructions, additional_instructions)
    head = [system] if system else []
    groups = [render_item(item, i) for i, item in enumerate(history)]
    keep = [i for i, group in enumerate(groups) if group]

    if truncation.type == "last_messages" and truncation.last_messages is not None:
        keep = _last_messages(history, keep, truncation.last_messages)
    else:
        window = context_window or backend.capabilities.context_window
        budget = prompt_budget(window, max_prompt_tokens, reserve_tokens)
        keep = _fit(backend, head, groups, history, keep, budget)

    messages = tuple(head + [m for i in keep for m in groups[i]])
    tokens = backend.count_tokens(messages)
    over = max_prompt_tokens is not None and tokens > max_prompt_tokens
    dropped = sum(1 for group in groups if group) - len(keep)
    return Prompt(messages, tokens, dropped, "max_prompt_tokens" if over else None)


def prompt_budget(
    window: int, max_prompt_tokens: int | None = None, reserve_tokens: int | None = None
) -> int:
    """Tokens ``auto`` lets the history take: the window less the reply's reserve, at most
    ``max_prompt_tokens``."""
    reserve = reserve_tokens if reserve_tokens is not None else min(DEFAULT_RESERVE, window // 4)
    budget = window - reserve
    return budget if max_prompt_tokens is None else min(budget, max_prompt_tokens)


def _last_messages(history: Sequence[HistoryItem], keep: list[int], n: int) -> list[int]:
    positions = [i for i in keep if isinstance(history[i], ThreadMessage)]
    if n <= 0:
        cutoff = positions[-1] + 1 if positions else 0
    elif n >= len(positions):
        return keep
    else:
        cutoff = positions[-n]
    return [i for i in keep if i >= cutoff]


def _fit(
    backend: ModelBackend,
    head: list[ChatMessage],
    groups: list[list[ChatMessage]],
    history: Sequence[HistoryItem],
    keep: list[int],
    budget: int,
) -> list[int]:
    def total(indices: list[int]) -> int:
        return backend.count_tokens(head + [m for i in indices for m in groups[i]])

    remaining = total(keep)
    if remaining <= budget:
        return keep
    users = [i for i in keep if _is_user(history[i])]
    protected_from = users[-1] if users else (keep[-1] if keep else 0)
    droppable = [i for i in keep if i < protected_from]
    tail = [i for i in keep if i >= protected_from]
    start = 0  # droppable[:start] are dropped (an index, not pop(0): linear, not quadratic)
    while start < len(droppable):
        # Token counts are nearly additive; drop by estimate, then check the real count.
        while start < len(droppable) and remaining > budget:
            remaining -= backend.count_tokens(groups[droppable[start]])
            start += 1
        while start < len(droppable) and not _is_user(history[droppable[start]]):
            start += 1
        remaining = total(droppable[start:] + tail)
        if remaining <= budget:
            break
    return droppable[start:] + tail


def _is_user(item: HistoryItem) -> bool:
    return isinstance(item, ThreadMessage) and item.role == "user"
