"""Checks on the tool calls of a turn: ``tool_called``, ``tool_sequence``, ``no_tool_called``.

Calls are matched by ``name`` and, optionally, by their parsed arguments with the matchers of
``matchers.py`` (``args``: subset, ``args_exact``: the same keys, ``args_schema``: a JSON Schema).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant_kit.testing.checks import Check, CheckContext, ExpectationError
from assistant_kit.testing.matchers import (
    MatcherError,
    check_expected,
    check_schema,
    match_args,
    schema_problem,
)
from assistant_kit.testing.records import CheckResult, ToolCallRecord, TurnRecord


@dataclass(frozen=True, slots=True)
class CallPattern:
    """A tool name plus optional argument constraints."""

    name: str
    args: Mapping[str, Any] | None = None
    args_exact: Mapping[str, Any] | None = None
    args_schema: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, value: Any, where: str, extra: tuple[str, ...] = ()) -> CallPattern:
        if isinstance(value, str):
            return cls(name=value)
        if not isinstance(value, Mapping):
            raise ExpectationError(f"{where}: expected a tool name or a mapping, got {value!r}")
        allowed = {"name", "args", "args_exact", "args_schema", *extra}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ExpectationError(
                f"{where}: unknown key {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
            )
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise ExpectationError(f"{where}: needs a tool `name`")
        for key in ("args", "args_exact"):
            if key in value and not isinstance(value[key], Mapping):
                raise ExpectationError(f"{where}: {key} must be a mapping, got {value[key]!r}")
        try:
            for key in ("args", "args_exact"):
                if key in value:
                    check_expected(value[key], f"{where}.{key}")
            if "args_schema" in value:
                check_schema(value["args_schema"], f"{where}.args_schema")
        except MatcherError as exc:
            raise ExpectationError(str(exc)) from exc
        return cls(name, value.get("args"), value.get("args_exact"), value.get("args_schema"))

    def describe(self) -> str:
        parts = []
        if self.args is not None:
            parts.append(f"args ⊇ {_json(self.args)}")
        if self.args_exact is not None:
            parts.append(f"args = {_json(self.args_exact)}")
        if self.args_schema is not None:
            parts.append("args fit the schema")
        return self.name + (f" ({'; '.join(parts)})" if parts else "")

    def problem(self, call: ToolCallRecord) -> str | None:
        """``None`` when ``call`` matches, else why not."""
        if call.name != self.name:
            return f"the name is {call.name}, not {self.name}"
        if self.args is None and self.args_exact is None and self.args_schema is None:
            return None
        if not call.arguments_ok:
            return f"the arguments are not valid JSON: {call.raw_arguments!r}"
        if self.args is not None:
            problem = match_args(self.args, call.arguments)
            if problem:
                return problem
        if self.args_exact is not None:
            problem = match_args(self.args_exact, call.arguments, exact=True)
            if problem:
                return problem
        if self.args_schema is not None:
            problem = schema_problem(self.args_schema, call.arguments)
            if problem:
                return f"args schema: {problem}"
        return None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _calls(turn: TurnRecord) -> str:
    if not turn.tool_calls:
        return "no tool calls were made"
    return "calls made: " + ", ".join(c.signature() for c in turn.tool_calls)


@dataclass(frozen=True, slots=True)
class ToolCalled(Check):
    """A matching call was made ``count`` times (default: at least once)."""

    pattern: CallPattern
    count_min: int = 1
    count_max: int | None = None

    @property
    def label(self) -> str:
        return f"tool_called: {self.pattern.describe()}{self._count_text()}"

    def _count_text(self) -> str:
        lo, hi = self.count_min, self.count_max
        if lo == 1 and hi is None:
            return ""
        if lo == hi:
            return f", exactly {lo} time{'s' if lo != 1 else ''}"
        if hi is None:
            return f", at least {lo} times"
        return f", {lo} to {hi} times"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        named = turn.calls_named(self.pattern.name)
        matching = [c for c in named if self.pattern.problem(c) is None]
        n = len(matching)
        expected = f"{self.pattern.describe()}{self._count_text() or ', at least once'}"
        if n >= self.count_min and (self.count_max is None or n <= self.count_max):
            shown = ", ".join(c.signature() for c in matching) or "none"
            return self.result(True, f"{n} matching call{'s' if n != 1 else ''}: {shown}")
        if not named:
            why = f"{self.pattern.name} was not called; {_calls(turn)}"
        elif n == 0:
            mismatches = "; ".join(f"{c.signature()}: {self.pattern.problem(c)}" for c in named)
            why = f"no call to {self.pattern.name} matched: {mismatches}"
        else:
            shown = ", ".join(c.signature() for c in matching)
            why = f"it matched {n} time{'s' if n != 1 else ''}: {shown}"
        return self.result(
            False,
            f"expected a call to {expected}; {why}",
            expected=expected,
            actual=", ".join(c.signature() for c in turn.tool_calls),
        )


@dataclass(frozen=True, slots=True)
class ToolSequence(Check):
    """The calls happened in this order (others may come between) or in any order."""

    calls: tuple[CallPattern, ...]
    order: str = "in_order"

    @property
    def label(self) -> str:
        return f"tool_sequence ({self.order}): " + ", ".join(p.name for p in self.calls)

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        made = turn.tool_calls
        if self.order == "in_order":
            missing = _first_unmatched_in_order(self.calls, made)
        else:
            missing = _first_unmatched_any_order(self.calls, made)
        wanted = ", ".join(p.describe() for p in self.calls)
        actual = ", ".join(c.signature() for c in made)
        if missing is None:
            return self.result(True, f"the calls {wanted} happened ({self.order}); {_calls(turn)}")
        how = "in this order" if self.order == "in_order" else "in any order"
        return self.result(
            False,
            f"expected calls {how}: {wanted}; found no place for "
            f"{self.calls[missing].describe()} (call #{missing + 1}); {_calls(turn)}",
            expected=wanted,
            actual=actual,
        )


def _first_unmatched_in_order(
    patterns: tuple[CallPattern, ...], calls: tuple[ToolCallRecord, ...]
) -> int | None:
    # Greedy earliest match is optimal for a subsequence search.
    position = 0
    for i, pattern in enumerate(patterns):
        while position < len(calls) and pattern.problem(calls[position]) is not None:
            position += 1
        if position == len(calls):
            return i
        position += 1
    return None


def _first_unmatched_any_order(
    patterns: tuple[CallPattern, ...], calls: tuple[ToolCallRecord, ...]
) -> int | None:
    # Patterns may overlap (`{name: a}` and `{name: a, args: ...}`), so greedy is not enough:
    # find a maximum bipartite matching with augmenting paths (Kuhn's algorithm).
    fits = [[j for j, c in enumerate(calls) if p.problem(c) is None] for p in patterns]
    owner: dict[int, int] = {}

    def assign(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or assign(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(patterns)):
        if not assign(i, set()):
            return i
    return None


@dataclass(frozen=True, slots=True)
class NoToolCalled(Check):
    """No tool was called at all, or none of the named ones."""

    names: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "no_tool_called: " + (", ".join(self.names) if self.names else "true")

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        if self.names:
            called = [c for c in turn.tool_calls if c.name in self.names]
            expected = f"no call to {' or '.join(self.names)}"
        else:
            called = list(turn.tool_calls)
            expected = "no tool calls"
        if not called:
            if not self.names:
                return self.result(True, "no tool calls were made")
            return self.result(True, f"{expected} was made; {_calls(turn)}")
        shown = ", ".join(c.signature() for c in called)
        return self.result(
            False, f"expected {expected}; got {shown}", expected=expected, actual=shown
        )


def build_tool_called(value: Any) -> ToolCalled:
    pattern = CallPattern.parse(value, "tool_called", extra=("count",))
    lo, hi = 1, None
    count = value.get("count") if isinstance(value, Mapping) else None
    if isinstance(count, bool):
        raise ExpectationError(
            f"tool_called.count: expected an integer or {{min, max}}, got {count}"
        )
    if isinstance(count, int):
        if count < 0:
            raise ExpectationError("tool_called.count: must not be negative")
        lo = hi = count
    elif isinstance(count, Mapping):
        unknown = sorted(set(count) - {"min", "max"})
        if unknown or not count:
            raise ExpectationError("tool_called.count: a mapping takes only `min` and `max`")
        lo_v, hi_v = count.get("min", 0), count.get("max")
        if not _is_int(lo_v) or (hi_v is not None and not _is_int(hi_v)):
            raise ExpectationError(f"tool_called.count: min and max must be integers: {count!r}")
        lo, hi = lo_v, hi_v
        if hi is not None and hi < lo:
            raise ExpectationError(f"tool_called.count: max {hi} is below min {lo}")
    elif count is not None:
        raise ExpectationError(
            f"tool_called.count: expected an integer or {{min, max}}, got {count!r}"
        )
    return ToolCalled(pattern, lo, hi)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def build_tool_sequence(value: Any) -> ToolSequence:
    if isinstance(value, list):
        value = {"calls": value}
    if not isinstance(value, Mapping):
        raise ExpectationError(
            f"tool_sequence: expected {{calls: [...], order: ...}}, got {value!r}"
        )
    unknown = sorted(set(value) - {"calls", "order"})
    if unknown:
        raise ExpectationError(f"tool_sequence: unknown key {', '.join(unknown)}")
    calls = value.get("calls")
    if not isinstance(calls, list) or not calls:
        raise ExpectationError("tool_sequence: `calls` must be a non-empty list")
    order = value.get("order", "in_order")
    if order not in ("in_order", "any_order"):
        raise ExpectationError(f"tool_sequence: order must be in_order or any_order, not {order!r}")
    patterns = tuple(CallPattern.parse(c, f"tool_sequence.calls[{i}]") for i, c in enumerate(calls))
    return ToolSequence(patterns, order)


def build_no_tool_called(value: Any) -> NoToolCalled:
    if value is True:
        return NoToolCalled()
    if isinstance(value, str) and value:
        return NoToolCalled((value,))
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return NoToolCalled(tuple(value))
    raise ExpectationError(
        f"no_tool_called: expected true, a tool name or a list of names, got {value!r}"
        + (" (to require a call, use tool_called)" if value is False else "")
    )
