"""Build the server's built-in tools from kit.yaml and find the one an assistant's tool entry names.

::

    tools = build_tools(project["server"], base_dir=project_dir)
    tool = tools.resolve({"type": "search"})           # -> the QuarkSearchTool
    result = await tool.call({"query": "Starry Night"}, context)
    await tools.aclose()

``server.tools`` (each key optional)::

    code_interpreter: {timeout_s: 30, cpu_s: 30, memory_mb: 512, max_processes: 32, file_mb: 64,
                       disk_mb: 256, max_output_bytes: 65536, idle_timeout_s: 600, max_workers: 16,
                       isolate: true, executor: "package.module:factory"}
    text_to_image: {backend: local | dashscope | openai, base_url, api_key_env, model, size, ...}
    quark_search:  {backend: corpus, path: docs/corpus} | {backend: http, url: ..., params: {...}}

A tool left out of ``server.tools`` still exists with its defaults: the code interpreter with the
local sandbox, text_to_image with the ``local`` placeholder backend; quark_search needs a backend,
and until it has one, calling it tells the model that search is not configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from assistant_kit.catalog import RESERVED_TOOL_TYPES
from assistant_kit.errors import ConfigError
from assistant_kit.server.tools.base import BuiltinTool, ToolContext, ToolOutput
from assistant_kit.server.tools.code_interpreter import CodeInterpreterTool
from assistant_kit.server.tools.guard import error_output
from assistant_kit.server.tools.plugins import HostAllowlist, PluginSpec, PluginTool
from assistant_kit.server.tools.quark_search import QuarkSearchTool
from assistant_kit.server.tools.sandbox import Executor, LocalSandbox, SandboxLimits
from assistant_kit.server.tools.text_to_image import TextToImageTool

_LIMIT_KEYS = frozenset(SandboxLimits.__dataclass_fields__)


class UnconfiguredTool(BuiltinTool):
    """Stands in for a built-in the server has no backend for; the model hears so."""

    def __init__(self, type_: str, aliases: tuple[str, ...], reason: str) -> None:
        self.type = type_
        self.aliases = aliases
        self.reason = reason

    def definition(self) -> Mapping[str, Any]:
        return {
            "name": self.type,
            "description": f"{self.type} (not available on this server)",
            "parameters": {"type": "object", "properties": {}},
        }

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        return error_output(self.type, self.reason)


class ToolRegistry:
    """The built-in tools and plugins of one server, by type, alias and plugin id."""

    def __init__(self, tools: list[BuiltinTool]) -> None:
        self._tools = list(tools)
        self._by_name: dict[str, BuiltinTool] = {}
        for tool in tools:
            for name in (tool.type, *tool.aliases):
                if name in self._by_name:
                    raise ConfigError(f"two tools are called {name!r}")
                self._by_name[name] = tool

    def __iter__(self) -> Iterator[BuiltinTool]:
        return iter(self._tools)

    def get(self, name: str) -> BuiltinTool | None:
        """The tool whose type, alias or plugin id is ``name``."""
        return self._by_name.get(name)

    def resolve(self, entry: Mapping[str, Any]) -> BuiltinTool | None:
        """The tool an assistant's tool entry asks for, or None (``function`` and unknown types).

        ``{type: code_interpreter}``, ``{type: search}``, a spec's ``{type: plugin, id: weather}``
        and DashScope's ``{type: weather, auth: {...}}`` are all understood.
        """
        kind = entry.get("type")
        if kind == "function" or not isinstance(kind, str):
            return None
        if kind in ("plugin", "dashscope_plugin"):
            plugin_id = entry.get("id") or entry.get("plugin_id") or entry.get("name")
            return self._by_name.get(plugin_id) if isinstance(plugin_id, str) else None
        return self._by_name.get(kind)

    async def aclose(self) -> None:
        for tool in self._tools:
            await tool.aclose()


def build_tools(
    server: Mapping[str, Any] | None = None,
    *,
    base_dir: Path | None = None,
    executor: Executor | None = None,
    http: httpx.AsyncClient | None = None,
) -> ToolRegistry:
    """The tools kit.yaml's ``server`` section declares (``tools``, ``plugins``, ``allowed_hosts``,
    ``allowed_private_networks``).

    ``base_dir`` is the folder relative paths (the search corpus) start from; ``executor``
    replaces the code interpreter's sandbox; ``http`` is used for every outgoing HTTP call.
    """
    server = server or {}
    base = base_dir or Path.cwd()
    config = _mapping(server.get("tools"), "server.tools")
    tools: list[BuiltinTool] = [
        _code_interpreter(_mapping(config.get("code_interpreter"), "code_interpreter"), executor),
        _text_to_image(_mapping(config.get("text_to_image"), "text_to_image"), http),
        _quark_search(_mapping(config.get("quark_search"), "quark_search"), base, http),
    ]
    hosts = server.get("allowed_hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError("server.allowed_hosts must be a list of host names")
    networks = server.get("allowed_private_networks") or []
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        raise ConfigError("server.allowed_private_networks must be a list of networks (CIDR)")
    allowlist = HostAllowlist(hosts, networks)
    plugins = server.get("plugins") or []
    if not isinstance(plugins, list):
        raise ConfigError("server.plugins must be a list")
    builtin_names = {name for tool in tools for name in (tool.type, *tool.aliases)}
    for entry in plugins:
        spec = PluginSpec.from_config(entry)
        if spec.id in builtin_names | set(RESERVED_TOOL_TYPES):
            raise ConfigError(f"server.plugins: id {spec.id!r} is taken by a built-in tool")
        tools.append(PluginTool(spec, allowlist, http=http))
    return ToolRegistry(tools)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    return value


def _code_interpreter(config: Mapping[str, Any], executor: Executor | None) -> BuiltinTool:
    unknown = set(config) - _LIMIT_KEYS - {"isolate", "executor"}
    if unknown:
        raise ConfigError(f"code_interpreter: unknown option(s) {', '.join(sorted(unknown))}")
    limits = SandboxLimits(**{k: v for k, v in config.items() if k in _LIMIT_KEYS})
    if executor is None and config.get("executor"):
        executor = _load_executor(str(config["executor"]), limits)
    if executor is None:
        executor = LocalSandbox(limits, isolate=bool(config.get("isolate", True)))
    return CodeInterpreterTool(executor)


def _load_executor(path: str, limits: SandboxLimits) -> Executor:
    """``package.module:factory``, called with the limits, returns an ``Executor``."""
    module_name, _, attribute = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"code_interpreter: cannot load executor {path!r}: {exc}") from exc
    executor = factory(limits)
    if not isinstance(executor, Executor):
        raise ConfigError(f"code_interpreter: {path!r} did not return an Executor")
    return executor


def _text_to_image(config: Mapping[str, Any], http: httpx.AsyncClient | None) -> BuiltinTool:
    options = dict(config)
    try:
        return TextToImageTool(**options, http=http)
    except TypeError as exc:
        raise ConfigError(f"text_to_image: {exc}") from exc


def _quark_search(
    config: Mapping[str, Any], base: Path, http: httpx.AsyncClient | None
) -> BuiltinTool:
    if not config:
        reason = "search is not configured on this server (kit.yaml server.tools.quark_search)"
        return UnconfiguredTool(QuarkSearchTool.type, QuarkSearchTool.aliases, reason)
    options = dict(config)
    if "path" in options:
        options["path"] = base / str(options["path"])
    try:
        return QuarkSearchTool(**options, http=http)
    except TypeError as exc:
        raise ConfigError(f"quark_search: {exc}") from exc
