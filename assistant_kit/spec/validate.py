"""JSON Schema validation of parsed documents: every issue at once, each with a position.

The schemas live in ``assistant_kit/schemas`` (the repo's ``schemas/`` links there). Each is
compiled once per process (``schema_validator`` is cached), so validating a thousand files costs a
thousand validations, not a thousand compilations.

Errors from jsonschema are rewritten for people: the offending node's ``file:line:col``, the
dotted path of the value, and "did you mean" for unknown keys and enum values. Checks a schema
cannot express (``checks.py``) run after the schema, on the same document.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from referencing import Registry, Resource

from assistant_kit.errors import SpecIssue
from assistant_kit.spec.checks import TYPE_WORDS, dotted, extra_checks, suggest
from assistant_kit.spec.load import Document

__all__ = [
    "SCHEMA_DIR",
    "check_assistant",
    "check_kit",
    "load_schema",
    "schema_issues",
    "schema_validator",
]

#: Folder of the JSON Schemas shipped with the package.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

_PATTERN_WORDS = {
    "^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$": (
        "use 1-64 lowercase letters, digits, `-` or `_`, starting and ending with a letter or digit"
    ),
    "^[a-zA-Z0-9_-]{1,64}$": "use 1-64 letters, digits, `_` or `-`",
    "^[A-Za-z_][A-Za-z0-9_]*$": "use letters, digits and `_`, not starting with a digit",
    "^https?://": "it must start with http:// or https://",
}


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed JSON Schema ``name`` (e.g. ``"assistant"``) from ``SCHEMA_DIR``."""
    with open(SCHEMA_DIR / f"{name}.schema.json", encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@functools.cache
def _registry() -> Registry[Any]:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = load_schema(path.name.removesuffix(".schema.json"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@functools.cache
def schema_validator(name: str) -> Draft202012Validator:
    """The compiled validator of schema ``name``; built once per process.

    ``$ref``s are inlined first (recursive ones stay references): reference lookups were a third
    of the validation time, and the verdicts do not change.
    """
    schema = load_schema(name)
    inlined = _inline(schema, schema["$id"], ())
    return Draft202012Validator(inlined, registry=_registry())


_ANNOTATIONS = frozenset({"title", "description", "$comment", "default", "examples"})


def _inline(node: Any, base: str, stack: tuple[str, ...]) -> Any:
    """``node`` with every non-recursive ``$ref`` replaced by the schema it points to."""
    if isinstance(node, list):
        return [_inline(v, base, stack) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target_uri = urljoin(base, ref)
        document, _, pointer = target_uri.partition("#")
        if target_uri in stack:
            return {k: v for k, v in node.items() if k != "$ref"} | {"$ref": target_uri}
        target: Any = _registry().contents(document)
        for part in filter(None, pointer.split("/")):
            target = target[part]
        resolved = _inline(target, document, (*stack, target_uri))
        siblings = {k: _inline(v, base, stack) for k, v in node.items() if k != "$ref"}
        if set(siblings) <= _ANNOTATIONS and isinstance(resolved, dict):
            return siblings | resolved  # the referenced schema's own title wins
        return siblings | {"allOf": [resolved]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("const", "enum", "default", "examples"):
            out[key] = value  # data, not schemas
        elif key in ("properties", "patternProperties", "$defs", "dependentSchemas"):
            out[key] = {name: _inline(sub, base, stack) for name, sub in value.items()}
        else:
            out[key] = _inline(value, base, stack)
    return out


def schema_issues(
    doc: Document, name: str, *, data: Any = None, base: Sequence[str | int] = ()
) -> list[SpecIssue]:
    """Every error of ``doc.data`` (or ``data`` found at ``base``) under schema ``name``."""
    instance = doc.data if data is None else data
    issues: dict[tuple[int, int, str], SpecIssue] = {}
    for error in schema_validator(name).iter_errors(instance):
        for issue in _explain(doc, error, tuple(base)):
            issues.setdefault((issue.line, issue.col, issue.message), issue)
    return list(issues.values())


def _explain(
    doc: Document, error: ValidationError, base: tuple[str | int, ...]
) -> Iterator[SpecIssue]:
    path = (*base, *error.absolute_path)
    where = dotted(path)
    prefix = f"`{where}`: " if where else ""
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    if kind in ("anyOf", "oneOf") and error.context:
        branch = _best_branch(error)
        if branch:
            for sub in branch:
                yield from _explain(doc, sub, base)
            return
        yield doc.issue(path, prefix + _anyof_words(error))
        return
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        for key in instance:
            if key in known:
                continue
            hint = suggest(key, known) or (
                f"; expected one of: {', '.join(known)}" if known else ""
            )
            yield doc.issue((*path, key), f"{prefix}unknown key `{key}`{hint}", at_key=True)
        return
    if kind == "required" and isinstance(instance, dict):
        for key in value:
            if key not in instance:
                yield doc.issue(path, f"{prefix}missing required key `{key}`")
        return
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        key_path = (*path, instance)
        message = _property_name_words(instance, error)
        yield doc.issue(key_path, f"{prefix}{message}", at_key=True)
        return
    yield doc.issue(path, prefix + _words(error))


def _best_branch(error: ValidationError) -> list[ValidationError] | None:
    """The errors of the one anyOf/oneOf branch that fits the instance's type, if exactly one."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    fitting = [
        subs
        for subs in branches.values()
        if not any(s.validator == "type" and not s.relative_path for s in subs)
    ]
    return fitting[0] if len(fitting) == 1 else None


def _anyof_words(error: ValidationError) -> str:
    kinds: list[str] = []
    for option in error.validator_value:
        option = _resolve_ref(option)
        words = TYPE_WORDS.get(str(option.get("type")), "")
        if "const" in option:
            words = json.dumps(option["const"])
        elif "enum" in option:
            words = "one of " + ", ".join(str(v) for v in option["enum"])
        if words and words not in kinds:
            kinds.append(words)
    return f"must be {' or '.join(kinds)}" if kinds else error.message


def _resolve_ref(option: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = option.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        for schema_name in ("assistant", "test", "kit"):
            found = load_schema(schema_name).get("$defs", {}).get(ref.removeprefix("#/$defs/"))
            if found is not None:
                return dict(found)
    return option


def _property_name_words(name: str, error: ValidationError) -> str:
    schema = error.schema
    reserved = schema.get("not", {}).get("enum", [])
    if name in reserved:
        return f"key `{name}` is reserved for the kit's own marks"
    limit = schema.get("maxLength")
    if limit is not None and len(name) > limit:
        return f"key `{name[:20]}...` is too long: {len(name)} characters (at most {limit})"
    if schema.get("minLength") and not name:
        return "keys must not be empty"
    pattern = schema.get("pattern")
    if pattern is not None:
        rule = _PATTERN_WORDS.get(pattern, "it must match " + pattern)
        return f"key `{name}` is not a valid name: {rule}"
    return f"key `{name}` is not allowed"


def _words(error: ValidationError) -> str:
    kind = error.validator
    value: Any = error.validator_value
    instance = error.instance
    shown = (
        json.dumps(instance, ensure_ascii=False) if not isinstance(instance, (dict, list)) else ""
    )
    if kind == "type":
        expected = [value] if isinstance(value, str) else list(value)
        words = " or ".join(TYPE_WORDS.get(t, t) for t in expected)
        return f"must be {words}, not {_type_name(instance)}"
    if kind == "enum":
        hint = suggest(instance, [str(v) for v in value]) if isinstance(instance, str) else ""
        return f"{shown} is not one of: {', '.join(str(v) for v in value)}{hint}"
    if kind == "const":
        return f"must be {json.dumps(value)}"
    if kind == "pattern":
        return f"{shown} is not valid: {_PATTERN_WORDS.get(value, 'it must match ' + value)}"
    if kind in ("minimum", "exclusiveMinimum"):
        rel = "at least" if kind == "minimum" else "greater than"
        return f"{shown} is too small: must be {rel} {value}"
    if kind in ("maximum", "exclusiveMaximum"):
        rel = "at most" if kind == "maximum" else "less than"
        return f"{shown} is too large: must be {rel} {value}"
    if kind == "maxLength":
        return f"too long: {len(instance):,} characters (at most {value:,})"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"too short: at least {value} characters"
    if kind == "maxItems":
        return f"too many items: {len(instance)} (at most {value})"
    if kind == "minItems":
        return "must not be empty" if value == 1 else f"needs at least {value} items"
    if kind == "uniqueItems":
        return "holds the same item twice"
    if kind == "maxProperties":
        if error.schema.get("title") == "Assertion":
            keys = ", ".join(f"`{k}`" for k in instance)
            return (
                f"an expectation holds exactly one assertion, found {keys}: "
                "put each in its own list item"
            )
        if error.schema.get("title") == "Metadata":
            return (
                f"too many metadata pairs: {len(instance)} (at most {value}; the API allows 16 and "
                f"the kit keeps {16 - value} for its own marks)"
            )
        if error.schema.get("title") == "Mock case":
            return "a `when` case holds `args` and exactly one of `returns` or `error`"
        if error.schema.get("title") == "Default outcome":
            return "`default` holds exactly one of `returns` or `error`"
        return f"too many keys: {len(instance)} (at most {value})"
    if kind == "minProperties":
        if error.schema.get("title") == "Assertion":
            return "empty expectation: write one assertion such as `contains: text`"
        if error.schema.get("title") == "Mock case":
            return "a `when` case needs `returns` or `error` beside `args`"
        return "must not be empty"
    return str(error.message)


def _type_name(instance: Any) -> str:
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return "true/false"
    if isinstance(instance, dict):
        return "a mapping"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, str):
        return f"the string {json.dumps(instance, ensure_ascii=False)[:60]}"
    return f"the number {instance}"


def _root_issues(doc: Document, what: str) -> list[SpecIssue]:
    if doc.data is None:
        return [doc.issue((), "file is empty: a spec needs at least `name` and `model`")]
    if not isinstance(doc.data, dict):
        kind = _type_name(doc.data)
        return [doc.issue((), f"the top level of a spec must be a mapping ({what}), not {kind}")]
    return []


def check_assistant(doc: Document) -> list[SpecIssue]:
    """Every problem of one assistant spec document: schema errors, then the extra checks."""
    root = _root_issues(doc, "one assistant")
    if root:
        return root
    issues = schema_issues(doc, "assistant")
    issues.extend(extra_checks(doc, doc.data))
    return issues


def check_kit(doc: Document) -> list[SpecIssue]:
    """Every problem of a kit.yaml document (an empty kit.yaml is fine)."""
    if doc.data is None:
        return []
    if not isinstance(doc.data, dict):
        return [doc.issue((), f"kit.yaml must be a mapping, not {_type_name(doc.data)}")]
    return schema_issues(doc, "kit") or _target_references(doc)


def _target_references(doc: Document) -> list[SpecIssue]:
    """Every target kit.yaml names (default, tests, judge) must be one it defines."""
    targets = {"local", *(doc.data.get("targets") or {})}
    test = doc.data.get("test") or {}
    judge = test.get("judge") or {}
    references = [
        (("default_target",), doc.data.get("default_target")),
        (("test", "target"), test.get("target")),
        (("test", "judge", "target"), judge.get("target")),
    ]
    issues = []
    for path, name in references:
        if isinstance(name, str) and name not in targets:
            hint = suggest(name, targets) or f"; targets: {', '.join(sorted(targets))}"
            issues.append(doc.issue(path, f"`{dotted(path)}`: unknown target `{name}`{hint}"))
    return issues
