"""Async clients of Assistant APIs, one per wire dialect, behind one interface."""

from __future__ import annotations

from assistant_kit.api.base import (
    NOT_GIVEN,
    AssistantClient,
    AssistantParams,
    MessageParams,
    NotGiven,
    Page,
    RemoteAssistant,
    RemoteMessage,
    RemoteThread,
)
from assistant_kit.api.dashscope import DashScopeClient
from assistant_kit.api.local import in_process
from assistant_kit.api.openai import OpenAIClient
from assistant_kit.api.registry import CLIENTS, client_for
from assistant_kit.api.runs import (
    RemoteRun,
    RemoteRunStep,
    RunParams,
    RunUsage,
    StepToolCall,
    StreamEvent,
    ToolCallRequest,
    ToolOutput,
)
from assistant_kit.api.turn import Turn, TurnDriver

__all__ = [
    "CLIENTS",
    "NOT_GIVEN",
    "AssistantClient",
    "AssistantParams",
    "DashScopeClient",
    "MessageParams",
    "NotGiven",
    "OpenAIClient",
    "Page",
    "RemoteAssistant",
    "RemoteMessage",
    "RemoteRun",
    "RemoteRunStep",
    "RemoteThread",
    "RunParams",
    "RunUsage",
    "StepToolCall",
    "StreamEvent",
    "ToolCallRequest",
    "ToolOutput",
    "Turn",
    "TurnDriver",
    "client_for",
    "in_process",
]
