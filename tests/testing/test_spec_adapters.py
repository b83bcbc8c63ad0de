"""The pieces read the real spec layer: every example test's expectations and mocks build, and
every assertion key the schema allows has a check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant_kit.spec import load_project
from assistant_kit.spec.validate import load_schema
from assistant_kit.testing.assertions import ASSERTIONS, build_expectation, evaluate_turn
from assistant_kit.testing.checks import Invalid
from assistant_kit.testing.mocks import MockAnswer, MockSession, mocks_from_spec
from assistant_kit.testing.records import CheckStatus, ToolCallRecord, TurnRecord, make_test_id
from assistant_kit.testing.secrets import Scrubber, secret_env_names
from assistant_kit.testing.selection import select

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project():
    return load_project(cwd=ROOT, environ={})


def test_schema_assertion_keys_all_have_checks():
    keys = set(load_schema("test")["$defs"]["assertion"]["properties"])
    assert keys - {"not"} <= set(ASSERTIONS)


def test_every_example_expectation_and_mock_builds(project):
    cases = [(spec, case) for spec in project.specs for case in spec.tests]
    assert cases, "the examples declare tests"
    for spec, case in cases:
        MockSession(mocks_from_spec(case.mocks))
        for i, turn in enumerate(case.turns):
            mocks_from_spec(turn.mocks)
            for e in turn.expect:
                check = build_expectation(e.kind, e.value, e.negate, where=f"{case.file}:{e.line}")
                assert not isinstance(check, Invalid), (spec.name, case.name, i, check)


@pytest.mark.anyio
async def test_order_desk_first_test_passes_on_a_good_turn(project):
    spec = next(s for s in project.specs if s.name == "order-desk")
    case = next(c for c in spec.tests if c.name == "looks up an order")
    session = MockSession(mocks_from_spec(case.mocks))
    call, miss = session.answer(
        ToolCallRecord.function("call_1", "get_order_status", '{"order_id": 42}')
    )
    assert miss is None
    assert json.loads(call.output)["status"] == "shipped"
    turn = TurnRecord(
        index=0, user=case.turns[0].user, reply="Order 42 has Shipped.", tool_calls=(call,)
    )
    checks = [build_expectation(e.kind, e.value, e.negate) for e in case.turns[0].expect]
    results = await evaluate_turn(checks, turn)
    assert [r.status for r in results] == [CheckStatus.PASSED] * len(results)


def test_per_turn_mocks_of_the_example_override(project):
    spec = next(s for s in project.specs if s.name == "order-desk")
    case = next(c for c in spec.tests if c.name == "reports a failed cancellation")
    session = MockSession(mocks_from_spec(case.mocks))
    first = session.resolve("get_order_status", {"order_id": 9})
    assert first == MockAnswer(
        '{"error": "order not found"}', True, "test:get_order_status.default.error"
    )
    turn_mocks = mocks_from_spec(case.turns[1].mocks)
    outputs = [
        session.resolve("get_order_status", {}, turn=1, turn_mocks=turn_mocks).output
        for _ in range(3)
    ]
    assert outputs == ['{"status": "processing"}', '{"status": "shipped"}', '{"status": "shipped"}']


def test_selection_and_secrets_from_the_example_project(project):
    ids = [(make_test_id(s.name, c.name), c.tags) for s in project.specs for c in s.tests]
    strong = select(ids, id_of=lambda t: t[0], tags_of=lambda t: t[1], tags=["strong-model"])
    assert {t[0] for t in strong} >= {"order-desk::looks up an order"}
    names = secret_env_names(project.config)
    assert {"DASHSCOPE_API_KEY", "OPENAI_API_KEY"} <= names
    scrubber = Scrubber.from_env(names, {"DASHSCOPE_API_KEY": "sk-dashscope-sentinel"})
    assert scrubber.text("key sk-dashscope-sentinel") == "key [REDACTED]"
