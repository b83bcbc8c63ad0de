"""Desired (a spec) against actual (a remote assistant): normal forms, digests, field changes.

Both sides are brought to one *comparable* form before anything is compared, so that nothing
shows as a change that is not one: tools sorted by type and name with their keys in canonical
order, older tool names resolved (``search`` -> ``quark_search``), default values dropped
(``strict: false``, an empty parameters object, OpenAI's ``temperature: 1``), plug-in tokens
replaced by a placeholder (they are secrets and are never compared, stored in a digest or
printed)::

    desired = desired_state(spec, "dashscope")
    actual = actual_state(remote, "dashscope")
    changes = field_changes(actual, desired)     # () when they match
    state_digest(desired)                        # what apply writes to ``kit_digest``
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant_kit.api.base import RemoteAssistant
from assistant_kit.catalog import (
    DEFAULTS,
    KIT_DIGEST,
    KIT_NAME,
    KIT_PROJECT,
    MARKS,
    SETTINGS,
    canonical_tool,
)
from assistant_kit.spec.model import AssistantSpec, Dialect, canonical_json

__all__ = [
    "SECRET",
    "FieldChange",
    "actual_state",
    "desired_state",
    "field_changes",
    "managed_name",
    "marks_of",
    "normalize_tool",
    "normalize_tools",
    "project_of",
    "state_digest",
]

#: What a plug-in token reads as in comparable forms, plans and digests.
SECRET = "<secret>"

#: The order fields are compared and shown in; every dialect's ``SETTINGS`` are among them.
FIELDS = (
    *("model", "name", "description", "instructions", "tools"),
    *("temperature", "top_p", "top_k", "max_tokens"),
)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs: ``before`` is the target's value, ``after`` the spec's.

    ``field`` is ``model``, ``instructions``, ``tools``, a setting, or ``metadata.<key>``;
    ``None`` on either side means "not set".
    """

    field: str
    before: Any
    after: Any

    @property
    def is_mark(self) -> bool:
        """True for the kit's own metadata marks."""
        return self.field in {f"metadata.{key}" for key in MARKS}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _parameters(value: Any) -> Any:
    """A function's parameters with defaults dropped (``None`` = the empty object schema)."""
    if not isinstance(value, Mapping):
        return None if value in (None, {}) else _plain(value)
    params = _plain(value)
    if params.get("required") == []:
        del params["required"]
    if params in ({}, {"type": "object"}, {"type": "object", "properties": {}}):
        return None
    return params


def normalize_tool(tool: Mapping[str, Any] | str) -> dict[str, Any]:
    """One tool in comparable form (aliases resolved, defaults dropped, tokens masked)."""
    if isinstance(tool, str):
        tool = {"type": tool}
    kind = str(tool.get("type") or "")
    kind = canonical_tool(kind)
    if kind == "function":
        function = dict(tool.get("function") or {})
        # the spec's own short form keeps the function's keys at the top level
        for key in ("name", "description", "parameters", "strict"):
            if key in tool and key not in function:
                function[key] = tool[key]
        out: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            out["description"] = function["description"]
        parameters = _parameters(function.get("parameters"))
        if parameters is not None:
            out["parameters"] = parameters
        if function.get("strict"):
            out["strict"] = True
        return {"type": "function", "function": out}
    body: dict[str, Any] = {"type": kind}
    for key, value in tool.items():
        if key == "type" or value is None or value == {}:
            continue
        if key == "auth" and isinstance(value, Mapping):
            auth = {k: _plain(v) for k, v in value.items() if k != "user_token"}
            auth.setdefault("type", "user_http")
            if "user_token" in value:
                auth["user_token"] = SECRET
            body["auth"] = auth
        else:
            body[key] = _plain(value)
    return body


def _tool_key(tool: Mapping[str, Any]) -> tuple[str, str]:
    name = tool.get("function", {}).get("name") if tool["type"] == "function" else ""
    return (str(tool["type"]), str(name or ""))


def tool_label(tool: Mapping[str, Any]) -> str:
    """How a tool is named in a plan: its function name, else its type."""
    kind, name = _tool_key(tool)
    return name or kind


def normalize_tools(tools: Sequence[Mapping[str, Any] | str]) -> list[dict[str, Any]]:
    """Tools in comparable form, sorted by type then function name."""
    return sorted((normalize_tool(t) for t in tools), key=_tool_key)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _comparable(
    fields: Mapping[str, Any], metadata: Mapping[str, Any], dialect: Dialect
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "model": fields.get("model") or None,
        "name": _text(fields.get("name")),
        "description": _text(fields.get("description")),
        "instructions": _text(fields.get("instructions")),
        "tools": normalize_tools(fields.get("tools") or ()),
    }
    defaults = DEFAULTS[dialect]
    for key in SETTINGS[dialect]:
        value = fields.get(key)
        if value is not None and key in defaults and value == defaults[key]:
            value = None
        if key in ("temperature", "top_p") and type(value) is int:
            value = float(value)  # a spec's `temperature: 0` is the 0.0 a target returns
        if value is not None:  # unset settings are left out: one digest in both dialects
            state[key] = value
    state["metadata"] = {str(k): str(v) for k, v in metadata.items() if k not in MARKS}
    return state


def desired_state(spec: AssistantSpec, dialect: Dialect) -> dict[str, Any]:
    """What ``spec`` asks for, in comparable form (no secrets resolved)."""
    payload = spec.to_payload(dialect)
    return _comparable(payload, payload.get("metadata") or {}, dialect)


def actual_state(remote: RemoteAssistant, dialect: Dialect) -> dict[str, Any]:
    """What the target holds, in comparable form (plug-in tokens masked)."""
    fields = {
        "model": remote.model,
        "name": remote.name,
        "description": remote.description,
        "instructions": remote.instructions,
        "tools": list(remote.tools),
        "temperature": remote.temperature,
        "top_p": remote.top_p,
        "top_k": remote.top_k,
        "max_tokens": remote.max_tokens,
    }
    return _comparable(fields, remote.metadata, dialect)


def state_digest(state: Mapping[str, Any]) -> str:
    """sha256 (hex) of a comparable form's canonical JSON: the ``kit_digest`` mark."""
    return hashlib.sha256(canonical_json(dict(state)).encode("utf-8")).hexdigest()


def project_of(remote: RemoteAssistant) -> str | None:
    """The project a remote assistant is marked with (None: none, an older kit's mark)."""
    project = remote.metadata.get(KIT_PROJECT)
    return project if isinstance(project, str) and project else None


def managed_name(remote: RemoteAssistant, project: str | None = None) -> str | None:
    """The spec name a remote assistant is managed as (None: unmanaged, or, when ``project``
    is given, managed by another project). An assistant with the name mark but no project mark
    (applied by an older kit) belongs to any project: it keeps being matched by its spec's
    project, whose next apply adds the mark."""
    name = remote.metadata.get(KIT_NAME)
    if not isinstance(name, str) or not name:
        return None
    if project is not None and project_of(remote) not in (None, project):
        return None
    return name


def marks_of(name: str, state: Mapping[str, Any], project: str | None = None) -> dict[str, str]:
    """The metadata marks apply writes for spec ``name`` in ``state`` (of ``project``)."""
    marks = {KIT_NAME: name, KIT_DIGEST: state_digest(state)}
    if project is not None:
        marks[KIT_PROJECT] = project
    return marks


def field_changes(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    before_marks: Mapping[str, str] | None = None,
    after_marks: Mapping[str, str] | None = None,
) -> tuple[FieldChange, ...]:
    """Every field that differs between two comparable forms (either may be absent), marks last.

    Settings only show when they differ; metadata shows key by key (``metadata.team``).
    """
    old = before or {}
    new = after or {}
    changes: list[FieldChange] = []
    for key in FIELDS:
        if key not in old and key not in new:
            continue
        a, b = old.get(key), new.get(key)
        if key == "tools":
            a, b = a or [], b or []
        if a != b:
            changes.append(FieldChange(key, a, b))
    meta_old = dict(old.get("metadata") or {})
    meta_new = dict(new.get("metadata") or {})
    for key in sorted(set(meta_old) | set(meta_new)):
        if meta_old.get(key) != meta_new.get(key):
            changes.append(FieldChange(f"metadata.{key}", meta_old.get(key), meta_new.get(key)))
    marks_a = dict(before_marks or {})
    marks_b = dict(after_marks or {})
    for key in MARKS:
        if marks_a.get(key) != marks_b.get(key):
            changes.append(FieldChange(f"metadata.{key}", marks_a.get(key), marks_b.get(key)))
    return tuple(changes)
