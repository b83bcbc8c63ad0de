"""What a conversation test records: per turn, per repetition, per test, per suite.

The runner fills these in; assertions read ``TurnRecord``; verdicts and reports read the rest.
Everything is a frozen value, so a report can never change what was recorded::

    turn = TurnRecord(index=0, user="Where is order 42?", reply="It has shipped.",
                      tool_calls=(ToolCallRecord.function("call_1", "get_order", '{"id": 42}'),))
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from assistant_kit.types import JSON

ToolKind = Literal["function", "builtin"]

#: The value ``ToolCallRecord.arguments`` holds when the raw text is not valid JSON.
UNPARSED: Any = None


class Verdict(str, enum.Enum):
    """The outcome of a repetition or a whole test."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


class CheckStatus(str, enum.Enum):
    """The outcome of one expectation on one turn."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the target reported for a turn (summed over its runs)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call the assistant made during a turn.

    ``kind`` is ``function`` (answered by the runner from the mocks) or ``builtin`` (run by
    the target: code_interpreter, quark_search, ...; ``type`` then names it). ``arguments`` is the
    parsed JSON (``None`` when ``raw_arguments`` does not parse; see ``arguments_ok``). ``mock``
    names the mock that answered (e.g. ``test:get_city.when[0]``), ``None`` when no mock did.
    """

    id: str
    name: str
    raw_arguments: str
    arguments: JSON = None
    arguments_ok: bool = True
    kind: ToolKind = "function"
    type: str = "function"
    output: str | None = None
    is_error: bool = False
    mock: str | None = None

    @classmethod
    def function(
        cls,
        id: str,
        name: str,
        raw_arguments: str,
        *,
        output: str | None = None,
        is_error: bool = False,
        mock: str | None = None,
    ) -> ToolCallRecord:
        """A function tool call, parsing ``raw_arguments`` (an empty text counts as ``{}``)."""
        arguments, ok = parse_arguments(raw_arguments)
        return cls(
            id=id,
            name=name,
            raw_arguments=raw_arguments,
            arguments=arguments,
            arguments_ok=ok,
            output=output,
            is_error=is_error,
            mock=mock,
        )

    @classmethod
    def builtin(
        cls,
        id: str,
        type: str,
        arguments: Mapping[str, Any],
        *,
        output: str | None = None,
        is_error: bool = False,
    ) -> ToolCallRecord:
        """A built-in tool step; its name is its type (``quark_search``, ``code_interpreter``)."""
        return cls(
            id=id,
            name=type,
            raw_arguments=json.dumps(dict(arguments), ensure_ascii=False),
            arguments=dict(arguments),
            kind="builtin",
            type=type,
            output=output,
            is_error=is_error,
        )

    def with_output(
        self, output: str, *, is_error: bool = False, mock: str | None = None
    ) -> ToolCallRecord:
        return replace(self, output=output, is_error=is_error, mock=mock)

    def signature(self) -> str:
        """``get_weather({"city": "Paris"})``: how messages and reports show the call."""
        return call_signature(
            self.name, self.arguments if self.arguments_ok else self.raw_arguments
        )


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One user message and everything the assistant did to answer it.

    ``latency_ms`` runs from sending the user message to the end of the last run of the turn
    (tool round trips included). ``errors`` are problems that stopped the turn from being judged
    (a failed run, a timeout, a transport error); they make the repetition an ERROR.
    """

    index: int
    user: str
    reply: str = ""
    tool_calls: tuple[ToolCallRecord, ...] = ()
    usage: Usage | None = None
    latency_ms: float = 0.0
    errors: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    status: str = "completed"

    def calls_named(self, name: str) -> tuple[ToolCallRecord, ...]:
        return tuple(call for call in self.tool_calls if call.name == name)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one expectation: a value, never an exception.

    ``check`` is a short label (``contains: 'shipped'``); ``message`` says what was expected and
    what happened; ``detail`` carries extra facts (a judge's verdict and reason).
    """

    check: str
    status: CheckStatus
    message: str
    expected: str = ""
    actual: str = ""
    detail: Mapping[str, JSON] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASSED

    @classmethod
    def ok(cls, check: str, message: str = "", **kw: Any) -> CheckResult:
        return cls(check, CheckStatus.PASSED, message or "ok", **kw)

    @classmethod
    def fail(cls, check: str, message: str, **kw: Any) -> CheckResult:
        return cls(check, CheckStatus.FAILED, message, **kw)

    @classmethod
    def error(cls, check: str, message: str, **kw: Any) -> CheckResult:
        return cls(check, CheckStatus.ERROR, message, **kw)


@dataclass(frozen=True, slots=True)
class TurnResult:
    """A recorded turn and the results of its expectations."""

    turn: TurnRecord
    checks: tuple[CheckResult, ...] = ()


@dataclass(frozen=True, slots=True)
class RepetitionResult:
    """One run of a test on a fresh thread. ``error`` is a problem outside any turn (set-up)."""

    index: int
    verdict: Verdict
    turns: tuple[TurnResult, ...] = ()
    duration_ms: float = 0.0
    error: str | None = None
    thread_id: str | None = None

    def problems(self) -> list[str]:
        """Every failed or errored check and every error, as ``turn N: message`` lines."""
        lines = [f"error: {self.error}"] if self.error else []
        for result in self.turns:
            n = result.turn.index + 1
            lines.extend(f"turn {n}: error: {e}" for e in result.turn.errors)
            lines.extend(
                f"turn {n}: {c.status.value}: {c.check}: {c.message}"
                for c in result.checks
                if not c.passed
            )
        return lines


@dataclass(frozen=True, slots=True)
class TestResult:
    """The verdict of one conversation test over its repetitions.

    ``test_id`` is ``assistant::test name``; ``flaky``: some repetitions passed, some did not.
    """

    __test__ = False  # not a pytest test class

    test_id: str
    assistant: str
    name: str
    verdict: Verdict
    repetitions: tuple[RepetitionResult, ...] = ()
    repeat: int = 1
    min_pass: int = 1
    tags: tuple[str, ...] = ()
    duration_ms: float = 0.0
    skip_reason: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def passes(self) -> int:
        return sum(1 for r in self.repetitions if r.verdict is Verdict.PASS)

    @property
    def flaky(self) -> bool:
        ran = [r for r in self.repetitions if r.verdict is not Verdict.SKIP]
        return 0 < self.passes < len(ran)

    def problems(self) -> list[str]:
        """The problems of every repetition that did not pass, prefixed when there are several."""
        lines: list[str] = []
        for rep in self.repetitions:
            if rep.verdict in (Verdict.PASS, Verdict.SKIP):
                continue
            prefix = f"repetition {rep.index + 1}: " if len(self.repetitions) > 1 else ""
            lines.extend(prefix + line for line in rep.problems() or [rep.verdict.value])
        return lines


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """Every test of one ``kit test`` invocation."""

    tests: tuple[TestResult, ...]
    duration_ms: float = 0.0
    target: str = ""
    started_at: str = ""
    #: Tests in scope that the selection (-k, --tag, exclude_tags, --shard) left out.
    deselected: int = 0
    #: Selected tests that never ran: -x stopped the suite, or it was interrupted.
    not_run: int = 0
    #: True when Ctrl-C (SIGINT) ended the suite early; the results are the finished tests.
    interrupted: bool = False

    def count(self, verdict: Verdict) -> int:
        return sum(1 for t in self.tests if t.verdict is verdict)

    @property
    def flaky(self) -> tuple[TestResult, ...]:
        return tuple(t for t in self.tests if t.flaky)

    @property
    def ok(self) -> bool:
        """True when nothing failed or errored (the CLI exits 0)."""
        return not any(t.verdict in (Verdict.FAIL, Verdict.ERROR) for t in self.tests)


def make_test_id(assistant: str, name: str) -> str:
    """The id ``-k`` and reports use: ``assistant::test name``."""
    return f"{assistant}::{name}"


def parse_arguments(raw: str) -> tuple[JSON, bool]:
    """Parse a tool call's argument text: ``(value, True)`` or ``(None, False)``."""
    if not raw.strip():
        return {}, True
    try:
        return json.loads(raw), True
    except ValueError:
        return UNPARSED, False


def call_signature(name: str, arguments: JSON) -> str:
    """``name(<arguments as JSON>)``; text that is not JSON is shown as it came."""
    if isinstance(arguments, str):
        return f"{name}({arguments})"
    return f"{name}({json.dumps(arguments, ensure_ascii=False)})"


def render_transcript(turns: tuple[TurnRecord, ...] | list[TurnRecord]) -> str:
    """A plain-text transcript (what a judge reads)::

    User: Where is order 42?
    Tool call: get_order({"id": 42}) -> {"status": "shipped"}
    Assistant: It has shipped.
    """
    lines: list[str] = []
    for turn in turns:
        lines.append(f"User: {turn.user}")
        for call in turn.tool_calls:
            output = "" if call.output is None else f" -> {call.output}"
            lines.append(f"Tool call: {call.signature()}{output}")
        lines.append(f"Assistant: {turn.reply}")
    return "\n".join(lines)
