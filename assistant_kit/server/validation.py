"""Request bodies checked against the JSON Schemas in ``assistant_kit/schemas/api/``.

A failure becomes one ``ApiError(400)`` in OpenAI's style (``Missing required parameter: 'model'.``,
``param`` set to the offending path), which each dialect then wraps in its envelope. A schema node
may carry ``"x-error": "<message>"`` (and ``"x-code"``, default ``invalid_value``): a failure
anywhere inside it is reported as that message, naming the node's own path (a compound value such
as ``tool_choice`` is wrong as a whole).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
from jsonschema.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    best_match,
    relevance,
)

from assistant_kit.errors import ApiError

_BASE = "https://assistant-kit.dev/schemas/api/"


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    folder = resources.files("assistant_kit").joinpath("schemas").joinpath("api")
    return {
        entry.name: json.loads(entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


def _inline(node: Any, document: str) -> Any:
    """``node`` with every ``$ref`` replaced by its target (the schemas have no cycles).

    Resolving references once here, instead of on every request, makes validation several times
    faster; the schema files stay readable with their shared ``common.json``.
    """
    if isinstance(node, list):
        return [_inline(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" not in node:
        return {k: _inline(v, document) for k, v in node.items()}
    ref = str(node["$ref"])
    target_doc, _, pointer = ref.partition("#")
    target_doc = target_doc.removeprefix(_BASE) or document
    target: Any = _documents()[target_doc]
    for part in filter(None, pointer.split("/")):
        target = target[part]
    resolved = {k: v for k, v in _inline(target, target_doc).items() if k not in ("$id", "$schema")}
    siblings = {k: _inline(v, document) for k, v in node.items() if k != "$ref"}
    if set(siblings) & set(resolved):
        return {**siblings, "allOf": [resolved]}
    return {**resolved, **siblings}


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """The validator of ``schemas/api/<name>.json``, references resolved."""
    document = f"{name}.json"
    return jsonschema.Draft202012Validator(_inline(_documents()[document], document))


def _param(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _whole(schema: Any, error: jsonschema.ValidationError) -> ApiError | None:
    """The error the outermost ``x-error`` node of ``schema`` that ``error`` lies in stands for
    (its message and ``x-code``, naming the node's path); None if there is no such node."""
    steps = list(error.absolute_schema_path)
    path = list(error.absolute_path)
    node, depth, i = schema, 0, 0
    while isinstance(node, dict):
        if isinstance(node.get("x-error"), str):
            code = str(node.get("x-code", "invalid_value"))
            return ApiError(400, code, node["x-error"], param=_param(path[:depth]) or None)
        if i >= len(steps):
            return None
        step = steps[i]
        i += 1
        if step in ("properties", "patternProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
            if i >= len(steps):
                return None
            node = node.get(step)
            node = node[steps[i]] if isinstance(node, (dict, list)) else None
            i += 1
            depth += step in ("properties", "patternProperties", "prefixItems")
        else:
            node = node.get(step)
            depth += step in ("items", "additionalProperties", "contains")
    return None


def validate(name: str, body: Mapping[str, Any]) -> None:
    """Raise ``ApiError(400)`` describing the most relevant problem of ``body``, if any."""
    check = validator(name)
    error = best_match(
        check.iter_errors(body), key=lambda e: (_whole(check.schema, e) is not None, *relevance(e))
    )
    if error is None:
        return
    whole = _whole(check.schema, error)
    if whole is not None:
        raise whole
    param = _param(error.absolute_path)
    if error.validator == "required":
        missing = next((f for f in error.validator_value if f not in (error.instance or {})), "?")
        param = f"{param}.{missing}" if param else str(missing)
        raise ApiError(
            400,
            "missing_required_parameter",
            f"Missing required parameter: '{param}'.",
            param=param,
        )
    if error.validator == "type":
        raise ApiError(
            400,
            "invalid_type",
            f"Invalid type for '{param or 'body'}': {error.message}.",
            param=param or None,
        )
    raise ApiError(
        400,
        "invalid_value",
        f"Invalid '{param or 'body'}': {_explain(error)}.",
        param=param or None,
    )


def _explain(error: jsonschema.ValidationError) -> str:
    limit, instance = error.validator_value, error.instance
    if error.validator == "maxLength":
        return f"string too long, at most {limit} characters are allowed, got {len(instance)}"
    if error.validator == "maxProperties":
        return f"at most {limit} keys are allowed, got {len(instance)}"
    if error.validator == "maxItems":
        return f"at most {limit} items are allowed, got {len(instance)}"
    message = str(error.message)
    return message if len(message) <= 200 else message[:197] + "..."
