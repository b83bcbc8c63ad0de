"""Checks of an assistant spec that its JSON Schema cannot express, and the words they share.

* function ``parameters`` must themselves be JSON Schemas (draft 2020-12 metaschema),
* function names are unique, test names are unique per assistant, ``min_pass <= repeat``,
* mocks name declared function tools and hold exactly one of ``returns``/``sequence``/``error``/
  ``when`` (``default`` only with ``when``),
* assertions name tools the assistant has; regexes compile; embedded schemas are schemas,
* spec ``vars`` do not try to read the environment (only kit.yaml may map env vars).

Each check is written defensively: it runs on documents the schema may have refused too, so that
``kit validate`` reports everything at once.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from assistant_kit import catalog
from assistant_kit.errors import SpecIssue
from assistant_kit.spec.load import Document

__all__ = ["TYPE_WORDS", "dotted", "extra_checks", "suggest"]

#: JSON Schema type -> how messages say it.
TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def dotted(path: Sequence[str | int]) -> str:
    """``("tools", 0, "name")`` -> ``tools[0].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def suggest(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean `x`?"`` for the closest choice, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


@functools.cache
def _metaschema_validator() -> Draft202012Validator:
    """The draft 2020-12 metaschema flattened into one document.

    The official metaschema is seven vocabulary documents joined by ``$dynamicRef``, which
    jsonschema resolves on every step (slow: ~0.7 ms per small schema). For checking ordinary
    schemas the dynamic references always land on the root, so the vocabularies are merged into
    one document whose ``$dynamicRef: "#meta"`` become ``$ref: "#"``: same verdicts, ~6x faster.
    """
    from jsonschema_specifications import REGISTRY  # type: ignore[import-untyped]

    root = REGISTRY.contents(Draft202012Validator.META_SCHEMA["$id"])
    properties: dict[str, Any] = dict(root.get("properties", {}))
    defs: dict[str, Any] = {}
    for ref in root["allOf"]:
        vocab = REGISTRY.contents(f"https://json-schema.org/draft/2020-12/{ref['$ref']}")
        properties.update(vocab.get("properties", {}))
        defs.update(vocab.get("$defs", {}))
    flat = {"type": ["object", "boolean"], "properties": properties, "$defs": defs}
    return Draft202012Validator(_static_refs(flat))


def _static_refs(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("$dynamicRef") == "#meta":
            node = {k: v for k, v in node.items() if k != "$dynamicRef"} | {"$ref": "#"}
        return {k: _static_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_static_refs(v) for v in node]
    return node


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def extra_checks(doc: Document, data: dict[str, Any]) -> Iterator[SpecIssue]:
    """Problems of an assistant spec that its JSON Schema cannot express."""
    tools = _list(data.get("tools"))
    functions: dict[str, int] = {}
    tool_names: set[str] = set(catalog.tool_names())
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "plugin" and isinstance(tool.get("id"), str):
            tool_names.add(tool["id"])
        if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            continue
        name = tool["name"]
        if name in functions:
            yield doc.issue(
                ("tools", index, "name"),
                f"function `{name}` is declared twice (first as `tools[{functions[name]}]`)",
            )
        else:
            functions[name] = index
        tool_names.add(name)
        params = tool.get("parameters")
        if isinstance(params, dict):
            yield from _parameter_issues(doc, ("tools", index, "parameters"), name, params)

    variables = data.get("vars")
    if isinstance(variables, dict):
        for key, value in variables.items():
            if isinstance(value, dict) and set(value) == {"env"}:
                yield doc.issue(
                    ("vars", key),
                    f"`vars.{key}`: environment variables can only be mapped in kit.yaml `vars`",
                )

    tests = _list(data.get("tests"))
    seen: dict[str, int] = {}
    for index, test in enumerate(tests):
        if not isinstance(test, dict):
            continue
        path: tuple[str | int, ...] = ("tests", index)
        name = test.get("name")
        if isinstance(name, str):
            if name in seen:
                first = doc.position(("tests", seen[name], "name")).line
                yield doc.issue(
                    (*path, "name"), f"duplicate test name `{name}` (first used at line {first})"
                )
            else:
                seen[name] = index
        repeat, min_pass = test.get("repeat", 1), test.get("min_pass")
        if isinstance(repeat, int) and isinstance(min_pass, int) and min_pass > repeat:
            yield doc.issue(
                (*path, "min_pass"), f"`min_pass` ({min_pass}) is more than `repeat` ({repeat})"
            )
        yield from _mock_issues(doc, (*path, "mocks"), test.get("mocks"), functions)
        turns = _list(test.get("turns"))
        for t, turn in enumerate(turns):
            if not isinstance(turn, dict):
                continue
            turn_path = (*path, "turns", t)
            yield from _mock_issues(doc, (*turn_path, "mocks"), turn.get("mocks"), functions)
            expect = _list(turn.get("expect"))
            for e, item in enumerate(expect):
                yield from _assertion_issues(doc, (*turn_path, "expect", e), item, tool_names)


def _parameter_issues(
    doc: Document, path: tuple[str | int, ...], name: str, params: dict[str, Any]
) -> Iterator[SpecIssue]:
    for where, words in _metaschema_errors(json.dumps(params, sort_keys=True)):
        yield doc.issue(
            (*path, *where), f"function `{name}` parameters are not a valid JSON Schema: {words}"
        )


@functools.lru_cache(maxsize=4096)
def _metaschema_errors(schema_json: str) -> tuple[tuple[tuple[str | int, ...], str], ...]:
    """(path, message) of each metaschema error; memoised, as specs often share parameters."""
    found = []
    for error in _metaschema_validator().iter_errors(json.loads(schema_json)):
        if error.validator == "anyOf" and error.absolute_path and error.absolute_path[-1] == "type":
            types = ", ".join(sorted(TYPE_WORDS))
            words = f"{json.dumps(error.instance)} is not a JSON Schema type (use one of: {types})"
        else:
            words = str(error.message)
        found.append((tuple(error.absolute_path), words))
    return tuple(found)


def _mock_issues(
    doc: Document, path: tuple[str | int, ...], mocks: Any, functions: Mapping[str, int]
) -> Iterator[SpecIssue]:
    if not isinstance(mocks, dict):
        return
    for tool, mock in mocks.items():
        if tool not in functions:
            hint = suggest(tool, functions) or (
                f"; declared function tools: {', '.join(functions)}" if functions else ""
            )
            yield doc.issue(
                (*path, tool),
                f"mock for `{tool}`, but the assistant declares no function tool `{tool}`{hint}",
                at_key=True,
            )
        if not isinstance(mock, dict):
            continue
        kinds = [k for k in ("returns", "sequence", "error", "when") if k in mock]
        if len(kinds) > 1:
            yield doc.issue(
                (*path, tool),
                f"mock `{tool}` holds {', '.join(f'`{k}`' for k in kinds)}: use exactly one of "
                "`returns`, `sequence`, `error` or `when`",
            )
        elif not kinds:
            yield doc.issue(
                (*path, tool),
                f"mock `{tool}` needs one of `returns`, `sequence`, `error` or `when`",
            )
        if "default" in mock and "when" not in mock:
            yield doc.issue(
                (*path, tool, "default"),
                f"mock `{tool}`: `default` only goes with `when`",
                at_key=True,
            )
        for c, case in enumerate(_list(mock.get("when"))):
            if isinstance(case, dict) and isinstance(case.get("args"), dict):
                yield from _matcher_issues(doc, (*path, tool, "when", c, "args"), case["args"])


def _matcher_issues(
    doc: Document, path: tuple[str | int, ...], args: Mapping[str, Any]
) -> Iterator[SpecIssue]:
    for key, value in args.items():
        if isinstance(value, dict) and set(value) == {"regex"}:
            yield from _regex_issues(doc, (*path, key, "regex"), value["regex"])
        elif (
            isinstance(value, dict)
            and set(value) == {"schema"}
            and isinstance(value["schema"], dict)
        ):
            for error in _metaschema_validator().iter_errors(value["schema"]):
                yield doc.issue(
                    (*path, key, "schema", *error.absolute_path),
                    f"not a valid JSON Schema: {error.message}",
                )


def _regex_issues(doc: Document, path: tuple[str | int, ...], pattern: Any) -> Iterator[SpecIssue]:
    if not isinstance(pattern, str):
        yield doc.issue(path, f"`{dotted(path)}`: a regex must be a string")
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        yield doc.issue(path, f"`{dotted(path)}`: invalid regular expression: {exc}")


def _assertion_issues(
    doc: Document, path: tuple[str | int, ...], item: Any, tool_names: set[str]
) -> Iterator[SpecIssue]:
    if not isinstance(item, dict) or len(item) != 1:
        return
    ((kind, value),) = item.items()
    at = (*path, kind)
    if kind == "not":
        yield from _assertion_issues(doc, at, value, tool_names)
    elif kind == "regex":
        yield from _regex_issues(doc, at, value)
    elif kind in ("tool_called", "tool_sequence", "no_tool_called"):
        calls: list[tuple[tuple[str | int, ...], Any]] = []
        if kind == "tool_called" and isinstance(value, dict):
            calls.append((at, value))
        elif (
            kind == "tool_sequence"
            and isinstance(value, dict)
            and isinstance(value.get("calls"), list)
        ):
            calls.extend(((*at, "calls", i), call) for i, call in enumerate(value["calls"]))
        elif kind == "no_tool_called" and isinstance(value, str):
            calls.append((at, {"name": value}))
        for call_path, call in calls:
            if not isinstance(call, dict):
                continue
            name = call.get("name")
            if isinstance(name, str) and name not in tool_names:
                where = (*call_path, "name") if kind != "no_tool_called" else call_path
                yield doc.issue(
                    where, f"the assistant has no tool `{name}`{suggest(name, tool_names)}"
                )
            if isinstance(call.get("args"), dict):
                yield from _matcher_issues(doc, (*call_path, "args"), call["args"])
            schema = call.get("args_schema")
            if isinstance(schema, dict):
                for error in _metaschema_validator().iter_errors(schema):
                    yield doc.issue(
                        (*call_path, "args_schema", *error.absolute_path),
                        f"not a valid JSON Schema: {error.message}",
                    )
    elif kind == "json" and isinstance(value, dict) and isinstance(value.get("schema"), dict):
        for error in _metaschema_validator().iter_errors(value["schema"]):
            yield doc.issue(
                (*at, "schema", *error.absolute_path), f"not a valid JSON Schema: {error.message}"
            )
