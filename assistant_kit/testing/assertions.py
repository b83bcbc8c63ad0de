"""Expectations: build checks from a turn's ``expect:`` items and run them on the recorded turn.

Each item has exactly one assertion key, or ``not:`` wrapping one::

    checks = build_checks([{"contains": "shipped"}, {"not": {"contains": "sorry"}}])
    results = await evaluate_turn(checks, turn, CheckContext.with_judge(my_judge))

A malformed item becomes a check that always reports an ERROR naming the problem, so one bad
expectation errors its test instead of stopping the suite. ``build_check`` raises
``ExpectationError`` for callers that prefer to fail early (``kit validate``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from assistant_kit.testing.checks import (
    Check,
    CheckContext,
    Contains,
    EndsWith,
    Equals,
    ExpectationError,
    Invalid,
    JsonReply,
    MaxLatency,
    MaxTokens,
    Not,
    OneOf,
    Regex,
    StartsWith,
    run_check,
    texts,
)
from assistant_kit.testing.judge import build_judge, build_python
from assistant_kit.testing.matchers import MatcherError, check_schema
from assistant_kit.testing.records import CheckResult, TurnRecord
from assistant_kit.testing.tool_checks import (
    build_no_tool_called,
    build_tool_called,
    build_tool_sequence,
)

__all__ = [
    "ASSERTIONS",
    "Check",
    "CheckContext",
    "ExpectationError",
    "build_check",
    "build_checks",
    "build_expectation",
    "evaluate_turn",
]


def _text(key: str, build: Callable[[str], Check]) -> Callable[[Any], Check]:
    def builder(value: Any) -> Check:
        found = texts(value, key)
        if len(found) != 1:
            raise ExpectationError(f"{key}: expected one text, got {value!r}")
        return build(found[0])

    return builder


def _regex(value: Any) -> Check:
    if not isinstance(value, str):
        raise ExpectationError(f"regex: expected a pattern, got {value!r}")
    try:
        re.compile(value)
    except re.error as exc:
        raise ExpectationError(f"regex: bad pattern {value!r}: {exc}") from exc
    return Regex(value)


def _one_of(value: Any) -> Check:
    if not isinstance(value, list) or not value:
        raise ExpectationError(f"one_of: expected a non-empty list of texts, got {value!r}")
    return OneOf(texts(value, "one_of"))


def _json(value: Any) -> Check:
    if value is True:
        return JsonReply()
    if isinstance(value, Mapping) and set(value) == {"schema"}:
        try:
            check_schema(value["schema"], "json.schema")
        except MatcherError as exc:
            raise ExpectationError(str(exc)) from exc
        return JsonReply(dict(value["schema"]))
    raise ExpectationError(
        f"json: expected true or {{schema: ...}}, got {value!r}"
        + (" (to require a non-JSON reply, use not: {json: true})" if value is False else "")
    )


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ExpectationError(f"{key}: expected a non-negative number, got {value!r}")
    return float(value)


def _max_tokens(value: Any) -> Check:
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in ("prompt", "completion", "total"):
            raise ExpectationError(
                f"max_tokens: expected a number or one of {{prompt|completion|total: N}}, "
                f"got {value!r}"
            )
        kind, limit = next(iter(value.items()))
        return MaxTokens(int(_number(f"max_tokens.{kind}", limit)), kind)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ExpectationError(f"max_tokens: expected an integer, got {value!r}")
    return MaxTokens(int(_number("max_tokens", value)))


#: Every assertion key and the function that builds its check from the YAML value.
ASSERTIONS: dict[str, Callable[[Any], Check]] = {
    "equals": _text("equals", Equals),
    "contains": lambda v: Contains(texts(v, "contains")),
    "icontains": lambda v: Contains(texts(v, "icontains"), ignore_case=True),
    "not_contains": lambda v: Contains(texts(v, "not_contains"), absent=True),
    "regex": _regex,
    "starts_with": _text("starts_with", StartsWith),
    "ends_with": _text("ends_with", EndsWith),
    "one_of": _one_of,
    "json": _json,
    "tool_called": build_tool_called,
    "tool_sequence": build_tool_sequence,
    "no_tool_called": build_no_tool_called,
    "max_latency_ms": lambda v: MaxLatency(_number("max_latency_ms", v)),
    "max_tokens": _max_tokens,
    "judge": build_judge,
    "python": build_python,
}


def build_check(item: Any) -> Check:
    """One ``expect:`` item -> a check; ``ExpectationError`` says what is wrong with it."""
    if not isinstance(item, Mapping):
        raise ExpectationError(f"an expectation must be a mapping with one key, got {item!r}")
    if len(item) != 1:
        keys = ", ".join(map(str, item)) or "none"
        raise ExpectationError(f"an expectation has exactly one assertion key, got: {keys}")
    key, value = next(iter(item.items()))
    if key == "not":
        return Not(build_check(value))
    builder = ASSERTIONS.get(key)
    if builder is None:
        known = ", ".join(sorted([*ASSERTIONS, "not"]))
        raise ExpectationError(f"unknown assertion {key!r} (known: {known})")
    return builder(value)


def build_expectation(kind: str, value: Any, negate: bool = False, where: str = "") -> Check:
    """A check from the spec model's ``Expectation(kind, value, negate)``; never raises: a bad
    one becomes an ``Invalid`` check (an ERROR naming ``where`` and the problem)."""
    try:
        check = build_check({kind: value})
    except ExpectationError as exc:
        return Invalid(where or kind, str(exc))
    return Not(check) if negate else check


def build_checks(items: Iterable[Any] | None, where: str = "expect") -> tuple[Check, ...]:
    """Build every item; a bad one becomes an ``Invalid`` check that reports an ERROR."""
    checks: list[Check] = []
    for i, item in enumerate(items or ()):
        try:
            checks.append(build_check(item))
        except ExpectationError as exc:
            checks.append(Invalid(f"{where}[{i}]", str(exc)))
    return tuple(checks)


async def evaluate_turn(
    checks: Iterable[Check], turn: TurnRecord, ctx: CheckContext | None = None
) -> tuple[CheckResult, ...]:
    """Run the checks of one turn in order; each yields a result, none raises."""
    ctx = ctx or CheckContext()
    return tuple([await run_check(check, turn, ctx) for check in checks])
