"""The built-in tools the server runs: code_interpreter, text_to_image, quark_search, plugins.

``build_tools(server_config)`` makes them from kit.yaml's ``server`` section; see ``registry.py``.
"""

from assistant_kit.server.tools.base import BuiltinTool, StoredFile, ToolContext, ToolOutput
from assistant_kit.server.tools.registry import ToolRegistry, build_tools
from assistant_kit.server.tools.sandbox import Execution, Executor, LocalSandbox, SandboxLimits

__all__ = [
    "BuiltinTool",
    "Execution",
    "Executor",
    "LocalSandbox",
    "SandboxLimits",
    "StoredFile",
    "ToolContext",
    "ToolOutput",
    "ToolRegistry",
    "build_tools",
]
