"""Verdicts: per repetition, k-of-n over repetitions, flaky, skip, error against fail."""

from __future__ import annotations

import pytest

from assistant_kit.testing.records import (
    CheckResult,
    RepetitionResult,
    SuiteResult,
    TestResult,
    TurnRecord,
    TurnResult,
    Verdict,
)
from assistant_kit.testing.verdicts import (
    RepeatError,
    make_repetition,
    make_test_result,
    overall_verdict,
    repeat_plan,
    repetition_verdict,
    skipped_test,
)

P, F, E, S = Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.SKIP
TURN = TurnRecord(index=0, user="hi", reply="hello")


def turn_with(*checks: CheckResult, errors: tuple[str, ...] = ()) -> TurnResult:
    return TurnResult(TurnRecord(index=0, user="hi", reply="hello", errors=errors), checks)


def reps(*verdicts: Verdict) -> list[RepetitionResult]:
    return [RepetitionResult(index=i, verdict=v, duration_ms=10.0) for i, v in enumerate(verdicts)]


@pytest.mark.parametrize(
    ("turns", "error", "verdict"),
    [
        pytest.param([turn_with(CheckResult.ok("a"))], None, P, id="all-passed"),
        pytest.param([], None, P, id="no-checks"),
        pytest.param(
            [turn_with(CheckResult.ok("a"), CheckResult.fail("b", "no"))], None, F, id="fail"
        ),
        pytest.param(
            [
                turn_with(CheckResult.fail("b", "no")),
                turn_with(CheckResult.error("j", "judge down")),
            ],
            None,
            E,
            id="error-beats-fail",
        ),
        pytest.param(
            [turn_with(CheckResult.ok("a"), errors=("timed out",))], None, E, id="turn-error"
        ),
        pytest.param([], "could not create thread", E, id="setup-error"),
    ],
)
def test_repetition_verdict(turns, error, verdict):
    assert repetition_verdict(turns, error) is verdict
    assert make_repetition(0, turns, error=error).verdict is verdict


@pytest.mark.parametrize(
    ("verdicts", "min_pass", "verdict", "flaky"),
    [
        pytest.param([P, P, P], 3, P, False, id="3-of-3"),
        pytest.param([P, F, P], 2, P, True, id="2-of-3-passes-flaky"),
        pytest.param([P, F, F], 2, F, True, id="1-of-3-fails-flaky"),
        pytest.param([F, F, F], 1, F, False, id="none-pass"),
        pytest.param([P, F, E], 2, E, True, id="error-could-have-passed"),
        pytest.param([F, F, E], 2, F, False, id="failures-decide"),
        pytest.param([E, E], 1, E, False, id="all-errors"),
        pytest.param([P, E, E], 1, P, True, id="enough-passes-despite-errors"),
        pytest.param([], 1, S, False, id="nothing-ran"),
    ],
)
def test_k_of_n(verdicts, min_pass, verdict, flaky):
    result = make_test_result(
        "bot::t", reps(*verdicts), repeat=max(len(verdicts), 1), min_pass=min_pass
    )
    assert overall_verdict(reps(*verdicts), min_pass) is verdict
    assert result.verdict is verdict
    assert result.flaky is flaky
    assert result.passes == verdicts.count(P)
    assert (result.assistant, result.name) == ("bot", "t")
    assert result.duration_ms == 10.0 * len(verdicts)


def test_skipped_test_keeps_its_reason():
    result = skipped_test("bot::t", "flaky upstream", tags=["smoke"])
    assert result.verdict is S
    assert result.skip_reason == "flaky upstream"
    assert skipped_test("bot::t", True).skip_reason == "skipped"


@pytest.mark.parametrize(
    ("repeat", "min_pass", "plan"),
    [
        pytest.param(None, None, (1, 1), id="defaults"),
        pytest.param(3, None, (3, 3), id="min_pass-defaults-to-repeat"),
        pytest.param(5, 2, (5, 2), id="explicit"),
    ],
)
def test_repeat_plan(repeat, min_pass, plan):
    assert repeat_plan(repeat, min_pass) == plan


@pytest.mark.parametrize(
    ("repeat", "min_pass"),
    [(0, None), (2, 3), (2, 0), ("3", None), (True, None), (3, 1.5)],
)
def test_repeat_plan_rejects_nonsense(repeat, min_pass):
    with pytest.raises(RepeatError):
        repeat_plan(repeat, min_pass)


def test_a_suite_is_ok_unless_a_test_failed_and_lists_the_flaky():
    passing = make_test_result("a::x", reps(P, F), repeat=2, min_pass=1)
    failing = make_test_result("a::y", reps(F))
    assert SuiteResult((passing, skipped_test("a::z", True))).ok
    assert not SuiteResult((passing, failing)).ok
    assert SuiteResult((passing, failing)).flaky == (passing,)


def test_test_result_is_not_collected_by_pytest():
    assert TestResult.__test__ is False
