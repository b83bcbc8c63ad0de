"""The one interface every model backend implements, and the values that cross it.

A backend turns a ``ModelRequest`` (a chat transcript plus tool definitions and sampling settings)
into a stream of ``ModelEvent`` values: text fragments, tool-call fragments, and exactly one final
``Finish`` carrying the usage. The run engine owns everything else (steps, messages, events,
statuses), so a backend never sees the store or the wire dialects.

Tool-call fragments follow OpenAI's streaming shape, cleaned up: the first fragment of call
``index`` carries its ``name`` (and ``id`` when the backend has one), later fragments carry only
more ``arguments`` text. Backends normalise whatever their upstream sends into that form.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call as the model made it; ``arguments`` is JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the transcript sent to a model (chat-completions shape)."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything a backend needs for one model call.

    ``tools`` are function definitions in chat-completions form:
    ``{"type": "function", "function": {"name", "description", "parameters"}}``; built-in tools
    reach the model the same way. ``tool_choice`` is "auto", "none", "required" or
    ``{"type": "function", "function": {"name": ...}}``.
    """

    model: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str | Mapping[str, Any] = "auto"
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    seed: int | None = None
    response_format: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the reply text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of tool call ``index``: the first one has ``name`` (and ``id`` if known)."""

    index: int
    arguments: str = ""
    name: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The last event of every model call."""

    reason: Literal["stop", "tool_calls", "length"]
    usage: Usage = field(default_factory=Usage)


ModelEvent = TextDelta | ToolCallDelta | Finish


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do; the engine adapts to these flags."""

    tools: bool = True
    streaming: bool = True
    context_window: int = 8192


class ModelBackend(abc.ABC):
    """A source of model output: chat-completions HTTP, an in-process GGUF, or a script."""

    #: The backend's kind as named in kit.yaml (``openai``, ``llama-cpp``, ``scripted``).
    kind: str = ""

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    def context_window(self, model: str) -> int:
        """Tokens ``model`` takes in one prompt and reply (``auto`` truncation fits to it)."""
        return self.capabilities.context_window

    @abc.abstractmethod
    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Yield the reply as fragments, ending with exactly one ``Finish``.

        Raise ``assistant_kit.errors.ModelError`` for a failure the run should report.
        """

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the transcript takes; backends with a tokenizer override this estimate."""
        chars = sum(
            len(m.content) + sum(len(c.arguments) + len(c.name) for c in m.tool_calls)
            for m in messages
        )
        return chars // 4 + 4 * len(messages)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (HTTP clients, model weights)."""
