"""Every assertion type: a passing, a failing and a negated case, plus malformed items."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant_kit.testing.assertions import (
    ASSERTIONS,
    CheckContext,
    ExpectationError,
    build_check,
    build_checks,
    evaluate_turn,
)
from assistant_kit.testing.records import CheckStatus, ToolCallRecord, TurnRecord, Usage

pytestmark = pytest.mark.anyio

HERE = str(Path(__file__).parent)

TURN = TurnRecord(
    index=0,
    user="Where is order 42?",
    reply="Your order 42 has SHIPPED. It arrives Friday.",
    tool_calls=(
        ToolCallRecord.function("c1", "get_order", '{"id": 42, "verbose": true}', output="{}"),
        ToolCallRecord.function("c2", "get_eta", '{"id": 42, "city": "Paris"}', output="{}"),
        ToolCallRecord.function("c3", "get_order", '{"id": 43}', output="{}"),
    ),
    usage=Usage(prompt_tokens=120, completion_tokens=30),
    latency_ms=850.0,
)
JSON_TURN = TurnRecord(index=0, user="json please", reply='```json\n{"status": "shipped"}\n```')
QUIET_TURN = TurnRecord(index=0, user="hi", reply="Hello!")

PASSED, FAILED, ERROR = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.ERROR

CASES = [
    # text checks
    pytest.param(
        {"equals": "Your order 42 has SHIPPED. It arrives Friday."}, TURN, PASSED, id="equals"
    ),
    pytest.param({"equals": "Your order shipped."}, TURN, FAILED, id="equals-fail"),
    pytest.param(
        {"equals": True},
        TurnRecord(index=0, user="?", reply=" true\n"),
        PASSED,
        id="equals-yaml-bool",
    ),
    pytest.param(
        {"equals": 42}, TurnRecord(index=0, user="?", reply="42"), PASSED, id="equals-number"
    ),
    pytest.param({"contains": "SHIPPED"}, TURN, PASSED, id="contains"),
    pytest.param({"contains": ["42", "Friday"]}, TURN, PASSED, id="contains-all"),
    pytest.param({"contains": "shipped"}, TURN, FAILED, id="contains-is-case-sensitive"),
    pytest.param({"icontains": "shipped"}, TURN, PASSED, id="icontains"),
    pytest.param({"icontains": "delivered"}, TURN, FAILED, id="icontains-fail"),
    pytest.param({"not_contains": "sorry"}, TURN, PASSED, id="not_contains"),
    pytest.param({"not_contains": ["sorry", "Friday"]}, TURN, FAILED, id="not_contains-fail"),
    pytest.param({"regex": r"(?i)order\s+42"}, TURN, PASSED, id="regex"),
    pytest.param({"regex": r"^\d+$"}, TURN, FAILED, id="regex-fail"),
    pytest.param({"starts_with": "Your"}, TURN, PASSED, id="starts_with"),
    pytest.param({"starts_with": "Hello"}, TURN, FAILED, id="starts_with-fail"),
    pytest.param({"ends_with": "Friday."}, TURN, PASSED, id="ends_with"),
    pytest.param({"ends_with": "Monday."}, TURN, FAILED, id="ends_with-fail"),
    pytest.param({"one_of": ["Hello!", "Hi!"]}, QUIET_TURN, PASSED, id="one_of"),
    pytest.param({"one_of": ["Hi!", "Hey"]}, QUIET_TURN, FAILED, id="one_of-fail"),
    pytest.param({"json": True}, JSON_TURN, PASSED, id="json-fenced"),
    pytest.param({"json": True}, TURN, FAILED, id="json-fail"),
    pytest.param(
        {"json": {"schema": {"type": "object", "required": ["status"]}}},
        JSON_TURN,
        PASSED,
        id="json-schema",
    ),
    pytest.param(
        {"json": {"schema": {"type": "object", "required": ["eta"]}}},
        JSON_TURN,
        FAILED,
        id="json-schema-fail",
    ),
    # tool calls
    pytest.param({"tool_called": {"name": "get_order"}}, TURN, PASSED, id="tool_called"),
    pytest.param({"tool_called": "get_eta"}, TURN, PASSED, id="tool_called-shorthand"),
    pytest.param({"tool_called": {"name": "cancel"}}, TURN, FAILED, id="tool_called-fail"),
    pytest.param(
        {"tool_called": {"name": "get_order", "args": {"id": 42}}}, TURN, PASSED, id="args-subset"
    ),
    pytest.param(
        {"tool_called": {"name": "get_order", "args": {"id": "42"}}},
        TURN,
        FAILED,
        id="args-literal-type-matters",
    ),
    pytest.param(
        {"tool_called": {"name": "get_eta", "args": {"city": {"regex": "^Pa"}}}},
        TURN,
        PASSED,
        id="args-regex",
    ),
    pytest.param(
        {"tool_called": {"name": "get_eta", "args": {"city": {"regex": "^Lo"}}}},
        TURN,
        FAILED,
        id="args-regex-fail",
    ),
    pytest.param(
        {"tool_called": {"name": "get_order", "args": {"id": {"schema": {"minimum": 43}}}}},
        TURN,
        PASSED,
        id="args-field-schema",
    ),
    pytest.param(
        {"tool_called": {"name": "get_order", "args_exact": {"id": 43}}},
        TURN,
        PASSED,
        id="args_exact",
    ),
    pytest.param(
        {"tool_called": {"name": "get_order", "args_exact": {"id": 42}}},
        TURN,
        FAILED,
        id="args_exact-extra-key",
    ),
    pytest.param(
        {"tool_called": {"name": "get_eta", "args_schema": {"required": ["id", "city"]}}},
        TURN,
        PASSED,
        id="args_schema",
    ),
    pytest.param(
        {"tool_called": {"name": "get_eta", "args_schema": {"required": ["zip"]}}},
        TURN,
        FAILED,
        id="args_schema-fail",
    ),
    pytest.param({"tool_called": {"name": "get_order", "count": 2}}, TURN, PASSED, id="count"),
    pytest.param({"tool_called": {"name": "get_order", "count": 1}}, TURN, FAILED, id="count-fail"),
    pytest.param(
        {"tool_called": {"name": "get_order", "count": {"min": 1, "max": 2}}},
        TURN,
        PASSED,
        id="count-range",
    ),
    pytest.param(
        {"tool_called": {"name": "get_order", "count": {"min": 3}}},
        TURN,
        FAILED,
        id="count-range-fail",
    ),
    pytest.param(
        {"tool_sequence": {"calls": ["get_order", "get_eta"], "order": "in_order"}},
        TURN,
        PASSED,
        id="sequence-in-order",
    ),
    pytest.param(
        {"tool_sequence": {"calls": [{"name": "get_eta"}, {"name": "get_eta"}]}},
        TURN,
        FAILED,
        id="sequence-needs-two",
    ),
    pytest.param(
        {"tool_sequence": {"calls": ["get_eta", "get_order", "get_order"], "order": "in_order"}},
        TURN,
        FAILED,
        id="sequence-wrong-order",
    ),
    pytest.param(
        {"tool_sequence": {"calls": ["get_eta", "get_order", "get_order"], "order": "any_order"}},
        TURN,
        PASSED,
        id="sequence-any-order",
    ),
    pytest.param(
        {
            "tool_sequence": {
                "calls": [{"name": "get_order"}, {"name": "get_order", "args": {"id": 42}}],
                "order": "any_order",
            }
        },
        TURN,
        PASSED,
        id="sequence-any-order-overlapping-patterns",
    ),
    pytest.param({"no_tool_called": True}, QUIET_TURN, PASSED, id="no_tool_called"),
    pytest.param({"no_tool_called": True}, TURN, FAILED, id="no_tool_called-fail"),
    pytest.param({"no_tool_called": "cancel"}, TURN, PASSED, id="no_tool_called-name"),
    pytest.param({"no_tool_called": ["cancel", "get_eta"]}, TURN, FAILED, id="no_tool_called-list"),
    pytest.param(
        {"tool_sequence": ["get_order", "get_eta"]}, TURN, PASSED, id="sequence-list-shorthand"
    ),
    pytest.param({"no_tool_called": "get_eta"}, TURN, FAILED, id="no_tool_called-name-fail"),
    # measurements
    pytest.param({"max_latency_ms": 1000}, TURN, PASSED, id="max_latency_ms"),
    pytest.param({"max_latency_ms": 500}, TURN, FAILED, id="max_latency_ms-fail"),
    pytest.param({"max_latency_ms": 849.5}, TURN, FAILED, id="max_latency_ms-fraction"),
    pytest.param({"max_tokens": 30}, TURN, PASSED, id="max_tokens"),
    pytest.param({"max_tokens": 29}, TURN, FAILED, id="max_tokens-fail"),
    pytest.param({"max_tokens": {"total": 150}}, TURN, PASSED, id="max_tokens-total"),
    pytest.param({"max_tokens": {"prompt": 100}}, TURN, FAILED, id="max_tokens-prompt-fail"),
    pytest.param({"max_tokens": 10}, QUIET_TURN, ERROR, id="max_tokens-no-usage"),
    # negation
    pytest.param({"not": {"contains": "error"}}, TURN, PASSED, id="not-contains"),
    pytest.param({"not": {"contains": "SHIPPED"}}, TURN, FAILED, id="not-contains-fail"),
    pytest.param({"not": {"tool_called": "cancel"}}, TURN, PASSED, id="not-tool_called"),
    pytest.param({"not": {"not": {"icontains": "friday"}}}, TURN, PASSED, id="not-not"),
    pytest.param({"not": {"max_tokens": 10}}, QUIET_TURN, ERROR, id="not-keeps-error"),
    pytest.param({"not": {"ends_with": "Friday."}}, TURN, FAILED, id="not-ends_with-fail"),
]


@pytest.mark.parametrize(("item", "turn", "status"), CASES)
async def test_assertion(item, turn, status):
    (result,) = await evaluate_turn(build_checks([item]), turn)
    assert result.status is status, result.message
    assert result.message
    assert result.check


def test_every_assertion_key_has_cases():
    covered = set()
    for case in CASES:
        item = case.values[0]
        while "not" in item:
            item = item["not"]
        covered.update(item)
    # judge and python are covered below (they need a judge and an importable module)
    assert covered | {"judge", "python"} == set(ASSERTIONS)


async def test_failure_message_shows_expected_and_actual():
    (result,) = await evaluate_turn(build_checks([{"contains": "delivered"}]), TURN)
    assert "'delivered'" in result.message
    assert "Your order 42 has SHIPPED" in result.message
    assert result.expected == "'delivered'"
    assert result.actual == TURN.reply


async def test_tool_called_failure_lists_the_calls_made():
    item = {"tool_called": {"name": "get_eta", "args": {"city": "London"}}}
    (result,) = await evaluate_turn(build_checks([item]), TURN)
    assert result.status is FAILED
    assert 'get_eta({"id": 42, "city": "Paris"})' in result.message
    assert "city: expected 'London', got 'Paris'" in result.message


async def test_tool_called_with_unparsable_arguments_fails_with_the_raw_text():
    turn = TurnRecord(
        index=0, user="x", tool_calls=(ToolCallRecord.function("c", "f", "{not json"),)
    )
    (result,) = await evaluate_turn(
        build_checks([{"tool_called": {"name": "f", "args": {}}}]), turn
    )
    assert result.status is FAILED
    assert "not valid JSON" in result.message
    assert "{not json" in result.message


async def test_negated_pass_says_what_held():
    (result,) = await evaluate_turn(build_checks([{"not": {"contains": "Friday"}}]), TURN)
    assert result.status is FAILED
    assert result.check == "not: contains: 'Friday'"
    assert "the reply contains 'Friday'" in result.message


async def test_yes_boolean_does_not_match_one():
    turn = TurnRecord(
        index=0, user="x", tool_calls=(ToolCallRecord.function("c", "f", '{"a": 1}'),)
    )
    (result,) = await evaluate_turn(
        build_checks([{"tool_called": {"name": "f", "args": {"a": True}}}]), turn
    )
    assert result.status is FAILED


# judge -----------------------------------------------------------------------------------------


async def fair_judge(rubric: str, transcript: str) -> tuple[bool, str]:
    return "SHIPPED" in transcript, f"rubric {rubric!r} read over {len(transcript)} characters"


async def broken_judge(rubric: str, transcript: str) -> tuple[bool, str]:
    raise TimeoutError("judge model did not answer")


async def garbage_judge(rubric: str, transcript: str):
    return "probably fine"


@pytest.mark.parametrize(
    ("judge", "turn", "status"),
    [
        pytest.param(fair_judge, TURN, PASSED, id="pass"),
        pytest.param(fair_judge, QUIET_TURN, FAILED, id="fail"),
        pytest.param(broken_judge, TURN, ERROR, id="raises-is-error"),
        pytest.param(garbage_judge, TURN, ERROR, id="garbage-is-error"),
    ],
)
async def test_judge(judge, turn, status):
    ctx = CheckContext.with_judge(judge)
    (result,) = await evaluate_turn(
        build_checks([{"judge": {"rubric": "Says it shipped"}}]), turn, ctx
    )
    assert result.status is status, result.message
    if status is not ERROR:
        assert result.detail["verdict"] is (status is PASSED)
        assert "characters" in result.detail["reason"]
        assert result.detail["reason"] in result.message


async def test_negated_judge_flips_the_verdict_but_not_an_error():
    checks = build_checks([{"not": {"judge": {"rubric": "Says it shipped"}}}])
    (ok,) = await evaluate_turn(checks, QUIET_TURN, CheckContext.with_judge(fair_judge))
    (err,) = await evaluate_turn(checks, TURN, CheckContext.with_judge(broken_judge))
    assert ok.status is PASSED
    assert err.status is ERROR


async def test_judge_sees_earlier_turns_and_gets_its_target_and_model():
    seen = {}

    def provider(target, model):
        seen["route"] = (target, model)
        return fair_judge_recording

    async def fair_judge_recording(rubric, transcript):
        seen["transcript"] = transcript
        return True, "fine"

    item = {"judge": {"rubric": "polite", "target": "local", "model": "qwen-max"}}
    ctx = CheckContext(history=(QUIET_TURN,), judges=provider)
    (result,) = await evaluate_turn(build_checks([item]), TURN, ctx)
    assert result.status is PASSED
    assert seen["route"] == ("local", "qwen-max")
    assert seen["transcript"].startswith("User: hi\nAssistant: Hello!\nUser: Where is order 42?")
    assert 'Tool call: get_order({"id": 42, "verbose": true}) -> {}' in seen["transcript"]


async def test_judge_without_a_configured_judge_is_an_error():
    (result,) = await evaluate_turn(build_checks([{"judge": "polite"}]), TURN)
    assert result.status is ERROR
    assert "no judge is configured" in result.message


# python ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "turn", "status", "fragment"),
    [
        pytest.param("kit_check_helpers:mentions_order", TURN, PASSED, "returned True", id="pass"),
        pytest.param(
            "kit_check_helpers:mentions_order", QUIET_TURN, FAILED, "returned False", id="fail"
        ),
        pytest.param("kit_check_helpers:with_reason", TURN, PASSED, "looked for 42", id="reason"),
        pytest.param(
            "kit_check_helpers:async_check", QUIET_TURN, FAILED, "returned False", id="async"
        ),
        pytest.param("kit_check_helpers:explodes", TURN, ERROR, "RuntimeError: boom", id="raises"),
        pytest.param("kit_check_helpers:answers_garbage", TURN, ERROR, "must return", id="garbage"),
        pytest.param(
            "kit_check_helpers:not_callable", TURN, ERROR, "cannot import", id="not-callable"
        ),
        pytest.param("no_such_module_xyz:check", TURN, ERROR, "cannot import", id="missing"),
    ],
)
async def test_python(ref, turn, status, fragment):
    ctx = CheckContext(import_paths=(HERE,))
    (result,) = await evaluate_turn(build_checks([{"python": ref}]), turn, ctx)
    assert result.status is status, result.message
    assert fragment in result.message


async def test_negated_python():
    ctx = CheckContext(import_paths=(HERE,))
    (result,) = await evaluate_turn(
        build_checks([{"not": {"python": "kit_check_helpers:mentions_order"}}]), QUIET_TURN, ctx
    )
    assert result.status is PASSED


# malformed items -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        pytest.param({"contains": "a", "regex": "b"}, "exactly one assertion key", id="two-keys"),
        pytest.param({"smells_like": "x"}, "unknown assertion 'smells_like'", id="unknown"),
        pytest.param("contains", "must be a mapping", id="not-a-mapping"),
        pytest.param({"regex": "("}, "bad pattern", id="bad-regex"),
        pytest.param({"json": False}, "not: {json: true}", id="json-false"),
        pytest.param({"json": {"schema": {"type": 5}}}, "invalid JSON Schema", id="bad-schema"),
        pytest.param({"tool_called": {"args": {}}}, "needs a tool `name`", id="no-name"),
        pytest.param({"tool_called": {"name": "f", "count": -1}}, "negative", id="bad-count"),
        pytest.param(
            {"tool_called": {"name": "f", "args": {"x": {"regex": "("}}}},
            "bad regex",
            id="arg-regex",
        ),
        pytest.param(
            {"tool_sequence": {"calls": [], "order": "in_order"}}, "non-empty", id="no-calls"
        ),
        pytest.param(
            {"tool_sequence": {"calls": ["a"], "order": "sideways"}}, "any_order", id="order"
        ),
        pytest.param({"no_tool_called": False}, "use tool_called", id="no_tool_called-false"),
        pytest.param({"max_latency_ms": "fast"}, "non-negative number", id="latency-text"),
        pytest.param({"max_tokens": 1.5}, "integer", id="tokens-float"),
        pytest.param({"judge": {"rubric": ""}}, "non-empty `rubric`", id="empty-rubric"),
        pytest.param({"python": "no colon"}, "module:function", id="python-ref"),
        pytest.param({"not": {"nope": 1}}, "unknown assertion 'nope'", id="not-unknown"),
        pytest.param({"one_of": []}, "non-empty list", id="one_of-empty"),
        pytest.param({"equals": None}, "expected a text", id="equals-null"),
        pytest.param({"starts_with": ["a", "b"]}, "expected one text", id="starts_with-list"),
        pytest.param({"regex": 5}, "expected a pattern", id="regex-number"),
        pytest.param({"contains": []}, "at least one text", id="contains-empty"),
        pytest.param({"max_tokens": {"cost": 5}}, "prompt|completion|total", id="tokens-kind"),
        pytest.param({"judge": ["x"]}, "expected {rubric", id="judge-list"),
        pytest.param({"judge": {"rubric": "x", "temp": 1}}, "unknown key temp", id="judge-key"),
        pytest.param(
            {"judge": {"rubric": "x", "model": 5}}, "model must be a name", id="judge-model"
        ),
        pytest.param({"tool_called": 5}, "a tool name or a mapping", id="tool_called-number"),
        pytest.param(
            {"tool_called": {"name": "f", "arg": {}}}, "unknown key arg", id="tool_called-key"
        ),
        pytest.param(
            {"tool_called": {"name": "f", "args": [1]}}, "args must be a mapping", id="args-list"
        ),
        pytest.param(
            {"tool_called": {"name": "f", "count": True}}, "integer or {min", id="count-bool"
        ),
        pytest.param(
            {"tool_called": {"name": "f", "count": {"most": 1}}}, "only `min`", id="count-key"
        ),
        pytest.param(
            {"tool_called": {"name": "f", "count": {"min": "1"}}},
            "must be integers",
            id="count-text",
        ),
        pytest.param(
            {"tool_called": {"name": "f", "count": {"min": 3, "max": 1}}},
            "below min",
            id="count-range",
        ),
        pytest.param(
            {"tool_called": {"name": "f", "count": "2"}}, "integer or {min", id="count-string"
        ),
        pytest.param({"tool_sequence": "a"}, "expected {calls", id="sequence-text"),
        pytest.param(
            {"tool_sequence": {"calls": ["a"], "strict": True}},
            "unknown key strict",
            id="sequence-key",
        ),
    ],
)
async def test_malformed_expectation_is_an_error_result(item, fragment):
    with pytest.raises(ExpectationError):
        build_check(item)
    (check,) = build_checks([item], where="turn 1 expect")
    (result,) = await evaluate_turn([check], TURN)
    assert result.status is ERROR
    assert fragment in result.message
    assert result.check == "turn 1 expect[0]"


async def test_a_crashing_check_becomes_an_error_result():
    from assistant_kit.testing.checks import Check

    class Crashy(Check):
        label = "crashy"

        def evaluate(self, turn, ctx):
            raise ValueError("oops")

    (result,) = await evaluate_turn([Crashy()], TURN)
    assert result.status is ERROR
    assert "ValueError: oops" in result.message


async def test_build_expectation_takes_the_spec_models_shape():
    from assistant_kit.testing.assertions import build_expectation

    negated = build_expectation("contains", "sorry", negate=True)
    (ok,) = await evaluate_turn([negated], TURN)
    assert ok.status is PASSED
    assert ok.check == "not: contains: 'sorry'"
    bad = build_expectation("contains", {"x": 1}, where="assistants/bot.yaml:12")
    (err,) = await evaluate_turn([bad], TURN)
    assert err.status is ERROR
    assert err.check == "assistants/bot.yaml:12"


# flaky: the same expectation over three repetitions that answer differently ----------------------

GOOD = TurnRecord(
    index=0,
    user="Where is order 42?",
    reply='{"status": "shipped", "order": 42}',
    tool_calls=(
        ToolCallRecord.function("c1", "get_order", '{"id": 42}', output="{}"),
        ToolCallRecord.function("c2", "notify", '{"id": 42}', output="{}"),
    ),
    usage=Usage(100, 20),
    latency_ms=100.0,
)
BAD = TurnRecord(
    index=0,
    user="Where is order 42?",
    reply="Sorry, I cannot help.",
    tool_calls=(ToolCallRecord.function("c9", "escalate", "{}", output="{}"),),
    usage=Usage(100, 400),
    latency_ms=9000.0,
)

FLAKY_ITEMS = [
    {"equals": '{"status": "shipped", "order": 42}'},
    {"contains": "shipped"},
    {"icontains": "SHIPPED"},
    {"not_contains": "Sorry"},
    {"regex": r"order\W+42"},
    {"starts_with": "{"},
    {"ends_with": "}"},
    {"one_of": ['{"status": "shipped", "order": 42}', "shipped"]},
    {"json": {"schema": {"type": "object", "required": ["status"]}}},
    {"tool_called": {"name": "get_order", "args": {"id": 42}, "count": 1}},
    {"tool_sequence": {"calls": ["get_order", "notify"], "order": "in_order"}},
    {"no_tool_called": "escalate"},
    {"max_latency_ms": 1000},
    {"max_tokens": 100},
    {"judge": {"rubric": "Says where the order is"}},
    {"python": "kit_check_helpers:mentions_order"},
    {"not": {"contains": "Sorry"}},
]


async def order_judge(rubric: str, transcript: str) -> tuple[bool, str]:
    return "shipped" in transcript, "looked for the status"


@pytest.mark.parametrize("item", FLAKY_ITEMS, ids=lambda item: next(iter(item)))
async def test_each_assertion_can_be_flaky_over_repetitions(item):
    from assistant_kit.testing.records import TurnResult, Verdict
    from assistant_kit.testing.verdicts import make_repetition, make_test_result

    ctx = CheckContext.with_judge(order_judge, import_paths=(HERE,))
    checks = build_checks([item])
    reps = []
    for i, turn in enumerate([GOOD, BAD, GOOD]):
        results = await evaluate_turn(checks, turn, ctx)
        reps.append(make_repetition(i, [TurnResult(turn, results)]))
    assert [r.verdict for r in reps] == [Verdict.PASS, Verdict.FAIL, Verdict.PASS]
    two_of_three = make_test_result("bot::t", reps, repeat=3, min_pass=2)
    all_three = make_test_result("bot::t", reps, repeat=3)
    assert (two_of_three.verdict, two_of_three.flaky) == (Verdict.PASS, True)
    assert (all_three.verdict, all_three.flaky) == (Verdict.FAIL, True)


def test_flaky_table_covers_every_assertion():
    assert {next(iter(i)) for i in FLAKY_ITEMS} == {*ASSERTIONS, "not"}
