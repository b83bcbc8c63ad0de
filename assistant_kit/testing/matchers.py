"""Argument matchers shared by ``tool_called`` and the ``when`` cases of mocks.

An expected value is a literal, or a one-key mapping ``{regex: PATTERN}`` (searched in the actual
value; non-strings are matched as their JSON text) or ``{schema: JSON_SCHEMA}``. Mappings match as a
subset (extra actual keys are fine) unless ``exact=True``; lists match element by element::

    match_args({"city": {"regex": "^P"}}, {"city": "Paris", "unit": "C"})   # -> None (a match)
    match_args({"city": "Rome"}, {"city": "Paris"})   # -> "city: expected 'Rome', got 'Paris'"
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from assistant_kit.errors import KitError


class MatcherError(KitError):
    """An expected value that cannot be used (a bad regex or schema)."""


def is_operator(value: Any) -> bool:
    """True for ``{regex: ...}`` and ``{schema: ...}`` (one key, nothing else)."""
    return (
        isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("regex", "schema")
    )


def check_expected(expected: Any, where: str = "args") -> None:
    """Raise ``MatcherError`` for a regex that does not compile or a schema that is not valid."""
    if is_operator(expected):
        op, arg = next(iter(expected.items()))
        if op == "regex":
            if not isinstance(arg, str):
                raise MatcherError(f"{where}: regex must be a string, got {arg!r}")
            try:
                re.compile(arg)
            except re.error as exc:
                raise MatcherError(f"{where}: bad regex {arg!r}: {exc}") from exc
        else:
            _check_schema(arg, where)
    elif isinstance(expected, Mapping):
        for key, value in expected.items():
            check_expected(value, f"{where}.{key}")
    elif isinstance(expected, list):
        for i, value in enumerate(expected):
            check_expected(value, f"{where}[{i}]")


def check_schema(schema: Any, where: str) -> None:
    """Raise ``MatcherError`` unless ``schema`` is a valid JSON Schema."""
    _check_schema(schema, where)


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, (Mapping, bool)):
        raise MatcherError(f"{where}: schema must be a mapping, got {schema!r}")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise MatcherError(f"{where}: invalid JSON Schema: {exc.message}") from exc


def schema_problem(schema: Any, value: Any) -> str | None:
    """The first reason ``value`` does not satisfy ``schema`` (at its JSON path), or ``None``."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    err = errors[0]
    path = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    return f"{path.lstrip('.') or '(root)'}: {err.message}"


def match_value(expected: Any, actual: Any, path: str = "", *, exact: bool = False) -> str | None:
    """``None`` when ``actual`` matches ``expected``, else the first mismatch, naming its path."""
    label = path or "(root)"
    if is_operator(expected):
        op, arg = next(iter(expected.items()))
        if op == "regex":
            text = actual if isinstance(actual, str) else json.dumps(actual, ensure_ascii=False)
            if re.search(arg, text) is None:
                return f"{label}: expected a match for /{arg}/, got {show(actual)}"
            return None
        problem = schema_problem(arg, actual)
        return None if problem is None else f"{label}: schema: {problem} (got {show(actual)})"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{label}: expected an object, got {show(actual)}"
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                return f"{sub}: expected {show(value)}, but the key is missing"
            problem = match_value(value, actual[key], sub, exact=exact)
            if problem:
                return problem
        if exact:
            extra = sorted(str(k) for k in actual if k not in expected)
            if extra:
                return f"{label}: unexpected keys {', '.join(extra)}"
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{label}: expected {show(expected)}, got {show(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problem = match_value(e, a, f"{path}[{i}]", exact=exact)
            if problem:
                return problem
        return None
    if not _same_literal(expected, actual):
        return f"{label}: expected {show(expected)}, got {show(actual)}"
    return None


def match_args(expected: Mapping[str, Any], actual: Any, *, exact: bool = False) -> str | None:
    """Match a call's parsed arguments against ``args`` (subset) or ``args_exact``."""
    return match_value(dict(expected), actual, exact=exact)


def _same_literal(expected: Any, actual: Any) -> bool:
    # True == 1 in Python; a YAML `true` must not match a JSON 1 (or the reverse).
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return type(expected) is type(actual) and bool(expected == actual)


def show(value: Any, limit: int = 120) -> str:
    """A short JSON rendering of a value for messages."""
    text = value if isinstance(value, str) else None
    rendered = json.dumps(value, ensure_ascii=False, default=str) if text is None else repr(text)
    return rendered if len(rendered) <= limit else rendered[: limit - 1] + "…"
