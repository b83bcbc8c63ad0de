"""Verdicts: from check results to a repetition's verdict, and from repetitions to a test's.

A repetition is an ERROR when something stopped it from being judged (a set-up error, a turn
error, a check that errored), else a FAIL when a check failed, else a PASS. A test with
``repeat: n`` and ``min_pass: k`` passes when at least k repetitions pass. When it does not, it is
a FAIL if the failures alone decide that (even had every errored repetition passed there would be
fewer than k passes), and an ERROR otherwise: the errors hid the answer. ``flaky`` (some but not
all repetitions passed) is reported beside the verdict, whatever it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant_kit.errors import KitError
from assistant_kit.testing.records import (
    CheckStatus,
    RepetitionResult,
    TestResult,
    TurnResult,
    Verdict,
)


class RepeatError(KitError):
    """``repeat`` / ``min_pass`` values that cannot be used."""


def repeat_plan(repeat: object = None, min_pass: object = None) -> tuple[int, int]:
    """Validate ``repeat`` (default 1) and ``min_pass`` (default: ``repeat``)."""
    n = 1 if repeat is None else repeat
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise RepeatError(f"repeat must be a positive integer, got {repeat!r}")
    k = n if min_pass is None else min_pass
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= n:
        raise RepeatError(f"min_pass must be an integer from 1 to repeat ({n}), got {min_pass!r}")
    return n, k


def repetition_verdict(turns: Sequence[TurnResult], error: str | None = None) -> Verdict:
    """ERROR beats FAIL beats PASS within one repetition."""
    if error or any(t.turn.errors for t in turns):
        return Verdict.ERROR
    statuses = {c.status for t in turns for c in t.checks}
    if CheckStatus.ERROR in statuses:
        return Verdict.ERROR
    if CheckStatus.FAILED in statuses:
        return Verdict.FAIL
    return Verdict.PASS


def make_repetition(
    index: int,
    turns: Sequence[TurnResult],
    *,
    duration_ms: float = 0.0,
    error: str | None = None,
    thread_id: str | None = None,
) -> RepetitionResult:
    """A repetition with its verdict computed from its turns."""
    return RepetitionResult(
        index=index,
        verdict=repetition_verdict(turns, error),
        turns=tuple(turns),
        duration_ms=duration_ms,
        error=error,
        thread_id=thread_id,
    )


def overall_verdict(repetitions: Sequence[RepetitionResult], min_pass: int) -> Verdict:
    """The verdict over repetitions (see the module docstring)."""
    ran = [r for r in repetitions if r.verdict is not Verdict.SKIP]
    if not ran:
        return Verdict.SKIP
    passes = sum(1 for r in ran if r.verdict is Verdict.PASS)
    if passes >= min_pass:
        return Verdict.PASS
    errors = sum(1 for r in ran if r.verdict is Verdict.ERROR)
    return Verdict.FAIL if passes + errors < min_pass else Verdict.ERROR


def make_test_result(
    test_id: str,
    repetitions: Sequence[RepetitionResult],
    *,
    repeat: int = 1,
    min_pass: int | None = None,
    tags: Sequence[str] = (),
    duration_ms: float | None = None,
    file: str | None = None,
    line: int | None = None,
) -> TestResult:
    """A test's result with its verdict; ``duration_ms`` defaults to the repetitions' sum."""
    assistant, _, name = test_id.partition("::")
    k = repeat if min_pass is None else min_pass
    return TestResult(
        test_id=test_id,
        assistant=assistant,
        name=name,
        verdict=overall_verdict(repetitions, k),
        repetitions=tuple(repetitions),
        repeat=repeat,
        min_pass=k,
        tags=tuple(tags),
        duration_ms=sum(r.duration_ms for r in repetitions) if duration_ms is None else duration_ms,
        file=file,
        line=line,
    )


def skipped_test(
    test_id: str,
    reason: str | bool | None,
    *,
    repeat: int = 1,
    min_pass: int | None = None,
    tags: Sequence[str] = (),
    file: str | None = None,
    line: int | None = None,
) -> TestResult:
    """A test declared ``skip: true`` or ``skip: <reason>``."""
    assistant, _, name = test_id.partition("::")
    return TestResult(
        test_id=test_id,
        assistant=assistant,
        name=name,
        verdict=Verdict.SKIP,
        repeat=repeat,
        min_pass=repeat if min_pass is None else min_pass,
        tags=tuple(tags),
        skip_reason=reason if isinstance(reason, str) and reason else "skipped",
        file=file,
        line=line,
    )
