"""A small suite of recorded results that the report tests render."""

from __future__ import annotations

import json

from assistant_kit.testing.records import (
    CheckResult,
    SuiteResult,
    ToolCallRecord,
    TurnRecord,
    TurnResult,
    Usage,
)
from assistant_kit.testing.verdicts import make_repetition, make_test_result, skipped_test


def sample_suite(secret: str = "nothing-secret-here") -> SuiteResult:
    """Four tests: a pass, a fail, a flaky pass (2 of 3) and a skip; ``secret`` is sprinkled
    through every kind of field, as a leaky target or tool might."""
    order_turn = TurnRecord(
        index=0,
        user="Where is order 42?",
        reply="Your order 42 has shipped <b>today</b> & will arrive soon.",
        tool_calls=(
            ToolCallRecord.function(
                "call_1",
                "get_order",
                '{"id": 42}',
                output='{"status": "shipped"}',
                mock="test:get_order.returns",
            ),
            ToolCallRecord.builtin(
                "call_2", "quark_search", {"query": "order 42"}, output="3 results"
            ),
        ),
        usage=Usage(100, 20),
        latency_ms=812.0,
        run_ids=("run_1",),
    )
    passing = make_test_result(
        "billing-bot::looks up an order",
        [
            make_repetition(
                0,
                [TurnResult(order_turn, (CheckResult.ok("contains: 'shipped'", "fine"),))],
                duration_ms=900.0,
                thread_id="thread_1",
            )
        ],
        tags=["smoke"],
        file="assistants/billing-bot.yaml",
        line=12,
    )
    leaky_turn = TurnRecord(
        index=0,
        user=f"My key is {secret}",
        reply=f"I stored {secret} for you",
        tool_calls=(
            ToolCallRecord.function(
                "call_3",
                "charge",
                json.dumps({"token": secret}),
                output='{"error": "card declined"}',
                is_error=True,
                mock="turn:charge.error",
            ),
        ),
        usage=Usage(50, 10),
        latency_ms=300.0,
        errors=(),
    )
    failing = make_test_result(
        "billing-bot::refunds a charge",
        [
            make_repetition(
                0,
                [
                    TurnResult(
                        leaky_turn,
                        (
                            CheckResult.fail(
                                "not_contains: 'stored'",
                                f"expected the reply not to contain 'stored'; reply: {secret}",
                                expected="not 'stored'",
                                actual=f"I stored {secret} for you",
                            ),
                            CheckResult.ok(
                                "judge: 'polite'",
                                f"the judge says pass: echoed {secret}",
                                detail={"verdict": True, "reason": f"echoed {secret}"},
                            ),
                        ),
                    )
                ],
                duration_ms=450.0,
                error=None,
                thread_id="thread_2",
            ),
        ],
    )
    flaky_reps = []
    for i, ok in enumerate([True, False, True]):
        turn = TurnRecord(index=0, user="hi", reply="Hello!" if ok else "Go away", latency_ms=100.0)
        check = (
            CheckResult.ok("contains: 'Hello'")
            if ok
            else CheckResult.fail(
                "contains: 'Hello'",
                f"expected the reply to contain 'Hello'; reply: 'Go away' "
                f"(Authorization: Bearer {secret})",
            )
        )
        flaky_reps.append(make_repetition(i, [TurnResult(turn, (check,))], duration_ms=120.0))
    flaky = make_test_result("art-maestro::greets", flaky_reps, repeat=3, min_pass=2)
    skipped = skipped_test("art-maestro::draws a cat", "needs a GPU")
    return SuiteResult(
        (passing, failing, flaky, skipped),
        duration_ms=2050.0,
        target="local",
        started_at="2026-11-21T20:00:00Z",
    )
