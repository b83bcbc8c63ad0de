"""Tool mocks: answer the assistant's function calls from the test's ``mocks:`` declarations.

One mock per function tool name, in one of these shapes (per-turn ``mocks:`` replace the test's
mock of the same tool for that turn)::

    get_order: {returns: {status: shipped}}     # JSON is sent serialized, text as it is
    get_rate:  {sequence: [1.0, 1.1]}           # successive calls; past the end the last repeats
    charge:    {error: card declined}           # output {"error": "card declined"}, marked an error
    get_city:
      when:                                     # the first case whose args match answers
        - {args: {city: Paris}, returns: {temp: 21}}
        - {args: {city: {regex: "^L"}}, error: unknown city}
      default: {returns: {temp: 0}}             # otherwise (no default: the call is a miss)

A ``MockSession`` lives for one repetition (sequences count per repetition; a per-turn sequence
starts again each turn) and records which mock answered in ``MockAnswer.source``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant_kit.errors import KitError
from assistant_kit.testing.matchers import MatcherError, check_expected, match_args
from assistant_kit.testing.records import CheckResult, ToolCallRecord, call_signature
from assistant_kit.types import JSON


class MockError(KitError):
    """A ``mocks:`` declaration that cannot be used (the message names the tool and the problem)."""


@dataclass(frozen=True, slots=True)
class MockAnswer:
    """The output for one call. ``source`` names the answering mock: ``test:get_city.when[0]``."""

    output: str
    is_error: bool
    source: str


@dataclass(frozen=True, slots=True)
class MockMiss:
    """No mock answers the call; ``message`` is what the test reports (a FAIL)."""

    message: str


@dataclass(frozen=True, slots=True)
class Rule:
    """``returns`` one value, a ``sequence`` of values, or an ``error`` text."""

    kind: str
    values: tuple[JSON, ...]


@dataclass(frozen=True, slots=True)
class ToolMock:
    """Everything declared for one tool: a plain rule, or ``when`` cases and a ``default``."""

    name: str
    rule: Rule | None = None
    cases: tuple[tuple[Mapping[str, Any], Rule], ...] = ()
    default: Rule | None = None


def unmocked_message(name: str, arguments: JSON) -> str:
    """``the assistant called get_weather({"city": "Paris"}) but no mock is declared``."""
    return f"the assistant called {call_signature(name, arguments)} but no mock is declared"


def serialize_output(value: JSON) -> str:
    """Text goes to the model as it is; any other JSON value as compact-but-readable JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def error_output(value: JSON) -> str:
    """What the model sees for an ``error`` mock: ``{"error": "card declined"}``."""
    return json.dumps({"error": value}, ensure_ascii=False)


def _outcome(outcome: Any) -> Rule:
    error = getattr(outcome, "error", None)
    if error is not None:
        return Rule("error", (error,))
    return Rule("returns", (getattr(outcome, "returns", None),))


def tool_mock_from_spec(spec: Any) -> ToolMock:
    """Adapt the spec model's ``MockSpec`` (``tool``, ``kind``, ``returns``, ``sequence``,
    ``error``, ``when`` of ``MockCase(args, outcome)``, ``default``) to a ``ToolMock``."""
    tool, kind = str(spec.tool), spec.kind
    if kind == "returns":
        return ToolMock(tool, rule=Rule("returns", (spec.returns,)))
    if kind == "sequence":
        if not spec.sequence:
            raise MockError(f"mock {tool}: sequence must be a non-empty list")
        return ToolMock(tool, rule=Rule("sequence", tuple(spec.sequence)))
    if kind == "error":
        return ToolMock(tool, rule=Rule("error", (spec.error,)))
    if kind != "when":
        raise MockError(f"mock {tool}: unknown kind {kind!r}")
    cases = []
    for i, case in enumerate(spec.when):
        try:
            check_expected(case.args, f"mock {tool}.when[{i}].args")
        except MatcherError as exc:
            raise MockError(str(exc)) from exc
        cases.append((dict(case.args), _outcome(case.outcome)))
    default = None if spec.default is None else _outcome(spec.default)
    return ToolMock(tool, cases=tuple(cases), default=default)


def mocks_from_spec(specs: Mapping[str, Any] | None) -> dict[str, ToolMock]:
    """``{tool: MockSpec}`` (a test's or a turn's ``mocks``) -> ``{tool: ToolMock}``."""
    return {str(name): tool_mock_from_spec(spec) for name, spec in (specs or {}).items()}


class MockSession:
    """Answers function calls for one repetition of a test.

    ``resolve(name, arguments, turn=i, turn_mocks=...)`` looks in the turn's mocks first, then the
    test's, and returns a ``MockAnswer`` or a ``MockMiss``.
    """

    def __init__(self, mocks: Mapping[str, ToolMock] | None = None) -> None:
        self.mocks = dict(mocks or {})
        self._calls: dict[tuple[Any, ...], int] = {}

    def resolve(
        self,
        name: str,
        arguments: JSON,
        *,
        turn: int = 0,
        turn_mocks: Mapping[str, ToolMock] | None = None,
        arguments_ok: bool = True,
    ) -> MockAnswer | MockMiss:
        key: tuple[Any, ...]
        if turn_mocks and name in turn_mocks:
            mock, scope, key = turn_mocks[name], "turn", ("turn", turn, name)
        elif name in self.mocks:
            mock, scope, key = self.mocks[name], "test", ("test", name)
        else:
            return MockMiss(unmocked_message(name, arguments))
        prefix = f"{scope}:{name}"
        if mock.rule is not None:
            return self._answer(mock.rule, prefix, (*key, "rule"))
        for i, (expected, rule) in enumerate(mock.cases):
            if arguments_ok and match_args(expected, arguments) is None:
                return self._answer(rule, f"{prefix}.when[{i}]", (*key, i))
        if mock.default is not None:
            return self._answer(mock.default, f"{prefix}.default", (*key, "default"))
        n = len(mock.cases)
        return MockMiss(
            f"the assistant called {call_signature(name, arguments)} but no mock case matches "
            f"({n} when-case{'s' if n != 1 else ''}, no default)"
        )

    def answer(
        self,
        call: ToolCallRecord,
        *,
        turn: int = 0,
        turn_mocks: Mapping[str, ToolMock] | None = None,
    ) -> tuple[ToolCallRecord, MockMiss | None]:
        """Answer a recorded function call: ``(call with output and mock filled in, None)``, or
        ``(call unchanged, miss)`` when no mock answers it."""
        found = self.resolve(
            call.name,
            call.arguments,
            turn=turn,
            turn_mocks=turn_mocks,
            arguments_ok=call.arguments_ok,
        )
        if isinstance(found, MockMiss):
            return call, found
        return call.with_output(found.output, is_error=found.is_error, mock=found.source), None

    def _answer(self, rule: Rule, source: str, key: tuple[Any, ...]) -> MockAnswer:
        if rule.kind == "error":
            return MockAnswer(error_output(rule.values[0]), True, f"{source}.error")
        if rule.kind == "returns":
            return MockAnswer(serialize_output(rule.values[0]), False, f"{source}.returns")
        n = self._calls.get(key, 0)
        self._calls[key] = n + 1
        index = min(n, len(rule.values) - 1)  # past the end, the last value repeats
        return MockAnswer(
            serialize_output(rule.values[index]), False, f"{source}.sequence[{index}]"
        )


def miss_result(miss: MockMiss) -> CheckResult:
    """The FAIL an unmocked call adds to its turn's checks."""
    return CheckResult.fail("mocks", miss.message, expected="a mock for every function call")
