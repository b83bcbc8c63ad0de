"""assistant-kit: assistants as config, and an embedded Assistant API server to run them.

The public API, importable from here (and nothing deeper is needed)::

    from assistant_kit import load_project, open_target, build_plan, apply_plan
    project = load_project(target="local")
    target = project.target
    async with open_target(project) as client:
        plan = await build_plan(client, project.specs, target=target.name, dialect=target.dialect)
        await apply_plan(client, plan)

Names load on first use, so importing the package (and starting the `kit` CLI) stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .errors import (
    ApiConnectionError,
    ApiError,
    ConfigError,
    KitError,
    ModelError,
    PlanError,
    SpecError,
    ToolError,
)

if TYPE_CHECKING:
    from .api import AssistantClient, DashScopeClient, OpenAIClient
    from .connect import open_target
    from .server.app import create_app
    from .server.config import ServerConfig
    from .spec import AssistantSpec, Project, load_project
    from .sync import Plan, apply_plan, build_plan

try:
    __version__ = version("assistant-kit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: public name -> module that defines it
_LAZY = {
    "AssistantClient": "assistant_kit.api",
    "AssistantSpec": "assistant_kit.spec",
    "DashScopeClient": "assistant_kit.api",
    "OpenAIClient": "assistant_kit.api",
    "Plan": "assistant_kit.sync",
    "Project": "assistant_kit.spec",
    "ServerConfig": "assistant_kit.server.config",
    "apply_plan": "assistant_kit.sync",
    "build_plan": "assistant_kit.sync",
    "create_app": "assistant_kit.server.app",
    "load_project": "assistant_kit.spec",
    "open_target": "assistant_kit.connect",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ApiConnectionError",
    "ApiError",
    "AssistantClient",
    "AssistantSpec",
    "ConfigError",
    "DashScopeClient",
    "KitError",
    "ModelError",
    "OpenAIClient",
    "Plan",
    "PlanError",
    "Project",
    "ServerConfig",
    "SpecError",
    "ToolError",
    "__version__",
    "apply_plan",
    "build_plan",
    "create_app",
    "load_project",
    "open_target",
]
