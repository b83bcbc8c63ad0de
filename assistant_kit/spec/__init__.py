"""The spec layer: find -> parse YAML (with positions) -> JSON Schema -> Jinja2 -> AssistantSpec.

No network and no click here. The front door is ``load_project()``::

    from assistant_kit.spec import load_project
    project = load_project(target="local")
    body = project.spec("art-maestro").to_payload("dashscope")
"""

from __future__ import annotations

from assistant_kit.spec.model import (
    AssistantSpec,
    Dialect,
    Expectation,
    MockCase,
    MockOutcome,
    MockSpec,
    Settings,
    TestCase,
    ToolSpec,
    Turn,
    canonical_json,
)
from assistant_kit.spec.project import Project, Target, find_kit_file, load_project

__all__ = [
    "AssistantSpec",
    "Dialect",
    "Expectation",
    "MockCase",
    "MockOutcome",
    "MockSpec",
    "Project",
    "Settings",
    "Target",
    "TestCase",
    "ToolSpec",
    "Turn",
    "canonical_json",
    "find_kit_file",
    "load_project",
]
