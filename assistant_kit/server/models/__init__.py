"""Model backends: one interface (``base.ModelBackend``), three kinds, and the router between them.

- ``OpenAIChatBackend`` (``openai``): any chat-completions endpoint over HTTP.
- ``ScriptedBackend`` (``scripted``): deterministic replies and tool calls chosen by rules; the
  sanctioned test double.
- ``LlamaCppBackend`` (``llama-cpp``): an in-process GGUF model, in ``models.llama_cpp`` (optional
  extra, imported only when a route needs it).
- ``ModelRouter``: kit.yaml's ``server.models`` (model name -> backend, ``default`` for the rest).
"""

from __future__ import annotations

from assistant_kit.server.models.base import (
    Capabilities,
    ChatMessage,
    Finish,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from assistant_kit.server.models.openai import OpenAIChatBackend
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.models.scripted import Rule, ScriptedBackend, ScriptedCall

__all__ = [
    "Capabilities",
    "ChatMessage",
    "Finish",
    "ModelBackend",
    "ModelEvent",
    "ModelRequest",
    "ModelRouter",
    "OpenAIChatBackend",
    "Rule",
    "ScriptedBackend",
    "ScriptedCall",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]
