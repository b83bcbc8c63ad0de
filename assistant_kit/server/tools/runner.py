"""Running built-in tools for a run: which ones it may use, how the model sees them, one call.

A run's tool entries name functions (shown to the model as they are) and built-in types
(``code_interpreter``, ``quark_search`` / ``search``, ``text_to_image`` / ``wanx``, plug-in ids).
A built-in type is shown to the model as the function its ``BuiltinTool.definition()`` describes
when the server has a tool for it; a type nobody serves is left out, so the model never calls
what cannot run. The server's tools are a mapping of type to tool, or a registry with
``resolve(entry)`` (``assistant_kit.server.tools.registry.ToolRegistry``). A call's result is
neutral (``ToolOutput``: output, logs, images, urls); the step entry stores it as such and each
dialect renders it (``Dialect.tool_call``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from assistant_kit.catalog import canonical_tool
from assistant_kit.server.tools.base import (
    BuiltinTool,
    SaveFile,
    StoredFile,
    ToolContext,
    ToolOutput,
)

log = logging.getLogger("assistant_kit.server.engine")


class ToolResolver(Protocol):
    """A registry of built-in tools (``tools.registry.ToolRegistry``)."""

    def resolve(self, entry: Mapping[str, Any]) -> BuiltinTool | None: ...


#: The server's built-in tools: by type (and alias / plug-in id), or a registry.
Tools: TypeAlias = "Mapping[str, BuiltinTool] | ToolResolver"


@dataclass(frozen=True, slots=True)
class Enabled:
    """A built-in tool a run enabled: the entry's type as given, the tool, the entry itself."""

    kind: str
    tool: BuiltinTool
    entry: Mapping[str, Any]

    @property
    def type(self) -> str:
        """The tool's canonical type (``text_to_image`` for an entry of type ``wanx``), which
        its step entries carry."""
        return self.tool.type or self.kind


def find_tool(tools: Tools, entry: Mapping[str, Any]) -> BuiltinTool | None:
    """The built-in tool a tool entry enables (``None``: a function or an unknown type)."""
    resolve = getattr(tools, "resolve", None)
    if callable(resolve) and not isinstance(tools, Mapping):
        found = resolve(entry)
        return found if isinstance(found, BuiltinTool) else None
    kind = entry.get("type")
    if kind in ("plugin", "dashscope_plugin"):
        kind = entry.get("id") or entry.get("plugin_id") or entry.get("name")
    if not isinstance(kind, str) or kind == "function" or not isinstance(tools, Mapping):
        return None
    tool = tools.get(kind) or tools.get(canonical_tool(kind))
    if tool is None:
        tool = next((t for t in tools.values() if kind in (t.type, *t.aliases)), None)
    return tool if isinstance(tool, BuiltinTool) else None


def offered_tools(
    entries: Sequence[Mapping[str, Any]], tools: Tools
) -> tuple[list[dict[str, Any]], dict[str, Enabled]]:
    """The function definitions to send the model, and the built-ins behind some names."""
    offered: list[dict[str, Any]] = []
    builtins: dict[str, Enabled] = {}
    for entry in entries:
        kind = entry.get("type")
        if kind == "function":
            function = entry.get("function") or {}
            if isinstance(function, Mapping) and function.get("name"):
                offered.append({"type": "function", "function": dict(function)})
            continue
        tool = find_tool(tools, entry)
        if tool is None:
            continue  # a built-in type this server has no tool for: the model never sees it
        definition = dict(tool.definition())
        name = str(definition.get("name") or tool.type)
        if name in builtins:
            continue
        builtins[name] = Enabled(str(kind), tool, entry)
        offered.append({"type": "function", "function": definition})
    return offered, builtins


def _arguments(text: str) -> dict[str, Any]:
    parsed = json.loads(text) if text.strip() else {}
    if not isinstance(parsed, dict):
        raise ValueError("the arguments are not a JSON object")
    return parsed


async def call_builtin(
    enabled: Enabled,
    name: str,
    arguments: str,
    *,
    thread_id: str,
    run_id: str,
    save_file: SaveFile | None,
) -> ToolOutput:
    """Run one call; failures come back as an error output the model reads, never raised."""
    try:
        parsed = _arguments(arguments)
    except ValueError as exc:
        return ToolOutput(f"error: bad arguments for {name}: {exc}", is_error=True)
    save = save_file or discard_file
    scoped = getattr(save, "scoped", None)
    if callable(scoped):  # a FileStore: the files belong to the thread and go with it
        save = scoped(thread_id=thread_id, run_id=run_id)
    context = ToolContext(
        thread_id=thread_id,
        run_id=run_id,
        save_file=save,
        config=enabled.entry,
    )
    try:
        return await enabled.tool.call(parsed, context)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a tool never fails the run
        log.exception("built-in tool %s failed", name)
        return ToolOutput(f"error: {name} failed: {exc}", is_error=True)


async def discard_file(data: bytes, filename: str, mime_type: str) -> StoredFile:
    """The file saver when the server has none configured: the file gets an id, not a home."""
    return StoredFile(
        id=f"file-{uuid.uuid4().hex[:24]}",
        filename=Path(filename).name,
        mime_type=mime_type,
        size=len(data),
    )
