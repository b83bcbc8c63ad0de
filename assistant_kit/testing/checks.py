"""The check base class and the checks that read a turn's reply and measurements.

A check is a frozen value built from one ``expect:`` item; ``await check.run(turn, ctx)`` returns a
``CheckResult`` and never raises. A passing result says what held (``the reply contains 'x'``), so
``not:`` can turn it into a failure message that still shows expected vs actual.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from assistant_kit.errors import KitError
from assistant_kit.testing.matchers import schema_problem, show
from assistant_kit.testing.records import CheckResult, CheckStatus, TurnRecord

#: Scores a rubric: ``await judge(rubric, transcript) -> (verdict, reason)``.
Judge = Callable[[str, str], Awaitable[tuple[bool, str]]]
#: Finds the judge for a check's ``target`` / ``model`` (either may be ``None``: the default).
JudgeProvider = Callable[[str | None, str | None], Judge | None]


class ExpectationError(KitError):
    """An ``expect:`` item that cannot be turned into a check (the message says why)."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check may use besides the turn: earlier turns, the judge, import paths."""

    history: tuple[TurnRecord, ...] = ()
    judges: JudgeProvider | None = None
    import_paths: tuple[str, ...] = ()

    @classmethod
    def with_judge(cls, judge: Judge, **kw: Any) -> CheckContext:
        """A context whose every judge check, whatever its target and model, uses ``judge``."""
        return cls(judges=lambda _target, _model: judge, **kw)


class Check(abc.ABC):
    """One expectation on one turn."""

    __slots__ = ()

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """A short description: ``contains: 'shipped'``."""

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        """Synchronous checks override this; asynchronous ones override ``run``."""
        raise NotImplementedError

    async def run(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        return self.evaluate(turn, ctx)

    def result(self, passed: bool, message: str, **kw: Any) -> CheckResult:
        status = CheckStatus.PASSED if passed else CheckStatus.FAILED
        return CheckResult(self.label, status, message, **kw)


def excerpt(text: str, limit: int = 200) -> str:
    """``repr`` of a text, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def texts(value: Any, key: str) -> tuple[str, ...]:
    """A text or a list of texts from YAML (numbers become their JSON text)."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ExpectationError(f"{key}: needs at least one text")
    for v in values:
        if isinstance(v, (Mapping, list)) or v is None:
            raise ExpectationError(f"{key}: expected a text or a list of texts, got {v!r}")
    return tuple(v if isinstance(v, str) else json.dumps(v) for v in values)


@dataclass(frozen=True, slots=True)
class Equals(Check):
    """The reply equals the text (surrounding whitespace ignored)."""

    expected: str

    @property
    def label(self) -> str:
        return f"equals: {excerpt(self.expected, 60)}"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        actual = turn.reply.strip()
        if actual == self.expected.strip():
            return self.result(True, f"the reply equals {excerpt(self.expected)}")
        return self.result(
            False,
            f"expected the reply to equal {excerpt(self.expected)}; got {excerpt(turn.reply)}",
            expected=self.expected,
            actual=turn.reply,
        )


@dataclass(frozen=True, slots=True)
class Contains(Check):
    """The reply contains every text (``icontains``: ignoring case; ``not_contains``: none)."""

    needles: tuple[str, ...]
    ignore_case: bool = False
    absent: bool = False

    @property
    def label(self) -> str:
        key = "not_contains" if self.absent else "icontains" if self.ignore_case else "contains"
        shown = ", ".join(excerpt(n, 40) for n in self.needles)
        return f"{key}: {shown}"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        def fold(text: str) -> str:
            return text.casefold() if self.ignore_case else text

        haystack = fold(turn.reply)
        found = [n for n in self.needles if fold(n) in haystack]
        missing = [n for n in self.needles if n not in found]
        how = " (ignoring case)" if self.ignore_case else ""
        reply = excerpt(turn.reply)
        if self.absent:
            if found:
                shown = ", ".join(map(repr, found))
                return self.result(
                    False,
                    f"expected the reply not to contain {shown}; reply: {reply}",
                    expected=f"not {shown}",
                    actual=turn.reply,
                )
            shown = ", ".join(map(repr, self.needles))
            return self.result(True, f"the reply contains none of {shown}; reply: {reply}")
        if missing:
            shown = ", ".join(map(repr, missing))
            return self.result(
                False,
                f"expected the reply to contain {shown}{how}; reply: {reply}",
                expected=shown,
                actual=turn.reply,
            )
        shown = ", ".join(map(repr, found))
        return self.result(True, f"the reply contains {shown}{how}; reply: {reply}")


@dataclass(frozen=True, slots=True)
class Regex(Check):
    """``re.search`` finds the pattern in the reply (use ``(?i)`` etc. for flags)."""

    pattern: str

    @property
    def label(self) -> str:
        return f"regex: /{self.pattern}/"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        match = re.search(self.pattern, turn.reply)
        if match:
            return self.result(True, f"/{self.pattern}/ matches {match.group(0)!r} in the reply")
        return self.result(
            False,
            f"expected a match for /{self.pattern}/; reply: {excerpt(turn.reply)}",
            expected=f"/{self.pattern}/",
            actual=turn.reply,
        )


@dataclass(frozen=True, slots=True)
class StartsWith(Check):
    """The reply (leading whitespace ignored) starts with the text."""

    prefix: str

    @property
    def label(self) -> str:
        return f"starts_with: {excerpt(self.prefix, 60)}"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        if turn.reply.lstrip().startswith(self.prefix):
            return self.result(True, f"the reply starts with {self.prefix!r}")
        return self.result(
            False,
            f"expected the reply to start with {self.prefix!r}; reply: {excerpt(turn.reply)}",
            expected=self.prefix,
            actual=turn.reply,
        )


@dataclass(frozen=True, slots=True)
class EndsWith(Check):
    """The reply (trailing whitespace ignored) ends with the text."""

    suffix: str

    @property
    def label(self) -> str:
        return f"ends_with: {excerpt(self.suffix, 60)}"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        if turn.reply.rstrip().endswith(self.suffix):
            return self.result(True, f"the reply ends with {self.suffix!r}")
        return self.result(
            False,
            f"expected the reply to end with {self.suffix!r}; reply: {excerpt(turn.reply)}",
            expected=self.suffix,
            actual=turn.reply,
        )


@dataclass(frozen=True, slots=True)
class OneOf(Check):
    """The reply (surrounding whitespace ignored) equals one of the texts."""

    options: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"one_of: {list(self.options)!r}"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        actual = turn.reply.strip()
        if actual in (o.strip() for o in self.options):
            return self.result(
                True, f"the reply {excerpt(actual)} is one of {list(self.options)!r}"
            )
        return self.result(
            False,
            f"expected one of {list(self.options)!r}; reply: {excerpt(turn.reply)}",
            expected=json.dumps(list(self.options), ensure_ascii=False),
            actual=turn.reply,
        )


_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?```$", re.S)


@dataclass(frozen=True, slots=True)
class JsonReply(Check):
    """The reply parses as JSON (a single fenced code block counts) and fits ``schema`` if given."""

    schema: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        return "json: schema" if self.schema is not None else "json: true"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        text = turn.reply.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group("body")
        try:
            value = json.loads(text)
        except ValueError as exc:
            return self.result(
                False,
                f"expected the reply to be JSON, but it does not parse ({exc}); reply: "
                f"{excerpt(turn.reply)}",
                expected="JSON",
                actual=turn.reply,
            )
        if self.schema is None:
            return self.result(True, f"the reply is JSON: {show(value)}")
        problem = schema_problem(self.schema, value)
        if problem:
            return self.result(
                False,
                f"expected the reply's JSON to fit the schema: {problem}; reply: {show(value)}",
                expected=json.dumps(self.schema, ensure_ascii=False),
                actual=turn.reply,
            )
        return self.result(True, f"the reply is JSON that fits the schema: {show(value)}")


def _ms(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True, slots=True)
class MaxLatency(Check):
    """The turn took at most this many milliseconds."""

    limit_ms: float

    @property
    def label(self) -> str:
        return f"max_latency_ms: {_ms(self.limit_ms)}"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        took = f"{turn.latency_ms:.0f} ms"
        limit = _ms(self.limit_ms)
        if turn.latency_ms <= self.limit_ms:
            return self.result(True, f"the turn took {took} (limit {limit} ms)")
        return self.result(
            False,
            f"expected at most {limit} ms; the turn took {took}",
            expected=f"<= {limit} ms",
            actual=took,
        )


@dataclass(frozen=True, slots=True)
class MaxTokens(Check):
    """The turn used at most ``limit`` tokens of one kind (``completion`` unless said otherwise)."""

    limit: int
    kind: str = "completion"

    @property
    def label(self) -> str:
        suffix = "" if self.kind == "completion" else f" ({self.kind})"
        return f"max_tokens: {self.limit}{suffix}"

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        usage = turn.usage
        if usage is None:
            return CheckResult.error(self.label, "the target reported no token usage for the turn")
        used = {
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "total": usage.total_tokens,
        }[self.kind]
        seen = (
            f"{used} {self.kind} tokens (prompt {usage.prompt_tokens}, "
            f"completion {usage.completion_tokens})"
        )
        if used <= self.limit:
            return self.result(True, f"the turn used {seen}")
        return self.result(
            False,
            f"expected at most {self.limit} {self.kind} tokens; the turn used {seen}",
            expected=f"<= {self.limit}",
            actual=str(used),
        )


@dataclass(frozen=True, slots=True)
class Not(Check):
    """Negates a check: passes when it fails, fails when it passes; an error stays an error."""

    inner: Check

    @property
    def label(self) -> str:
        return f"not: {self.inner.label}"

    async def run(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        inner = await run_check(self.inner, turn, ctx)
        if inner.status is CheckStatus.ERROR:
            return CheckResult.error(self.label, inner.message, detail=inner.detail)
        if inner.passed:
            return self.result(
                False,
                f"expected the opposite of [{self.inner.label}], but {inner.message}",
                expected=f"not {inner.expected or self.inner.label}",
                actual=inner.actual,
                detail=inner.detail,
            )
        return self.result(
            True, f"as expected, not [{self.inner.label}]: {inner.message}", detail=inner.detail
        )


@dataclass(frozen=True, slots=True)
class Invalid(Check):
    """An ``expect:`` item that could not be built: always an ERROR with the reason."""

    where: str
    reason: str

    @property
    def label(self) -> str:
        return self.where

    def evaluate(self, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
        return CheckResult.error(self.label, f"invalid expectation: {self.reason}")


async def run_check(check: Check, turn: TurnRecord, ctx: CheckContext) -> CheckResult:
    """Run one check; an unexpected exception becomes an ERROR result, never propagates."""
    try:
        return await check.run(turn, ctx)
    except Exception as exc:  # a check is a value; the report shows what broke
        return CheckResult.error(check.label, f"the check crashed: {type(exc).__name__}: {exc}")
