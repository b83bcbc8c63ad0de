"""Tool mocks: returns, sequences, errors, when-cases, defaults, per-turn overrides, misses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assistant_kit.spec.model import MockCase, MockOutcome, MockSpec
from assistant_kit.testing.mocks import (
    MockAnswer,
    MockError,
    MockMiss,
    MockSession,
    ToolMock,
    mocks_from_spec,
    unmocked_message,
)

TEST_MOCKS = {
    "get_order": {"returns": {"status": "shipped"}},
    "greeting": {"returns": "hello there"},
    "get_rate": {"sequence": [1.0, 1.1, {"rate": 1.2}]},
    "charge": {"error": "card declined"},
    "get_city": {
        "when": [
            {"args": {"city": "Paris"}, "returns": {"temp": 21}},
            {"args": {"city": {"regex": "^L"}}, "error": "unknown city"},
        ],
        "default": {"returns": {"temp": 0}},
    },
    "strict_city": {"when": [{"args": {"city": "Oslo"}, "returns": "cold"}]},
}


def parse(data: dict[str, Any]) -> dict[str, ToolMock]:
    """``mocks:`` as a spec file declares them, through the spec model, as the runner reads them."""
    return mocks_from_spec({name: MockSpec.from_data(name, mock) for name, mock in data.items()})


def session() -> MockSession:
    return MockSession(parse(TEST_MOCKS))


def test_returns_json_is_serialized_and_text_is_kept():
    s = session()
    assert s.resolve("get_order", {"id": 42}) == MockAnswer(
        '{"status": "shipped"}', False, "test:get_order.returns"
    )
    assert s.resolve("greeting", {}).output == "hello there"


def test_sequence_answers_in_turn_then_repeats_the_last():
    s = session()
    outputs = [s.resolve("get_rate", {}).output for _ in range(5)]
    assert outputs == ["1.0", "1.1", '{"rate": 1.2}', '{"rate": 1.2}', '{"rate": 1.2}']
    assert s.resolve("get_rate", {}).source == "test:get_rate.sequence[2]"


def test_sequence_counts_per_session():
    first, second = session(), session()
    first.resolve("get_rate", {})
    assert second.resolve("get_rate", {}).output == "1.0"


def test_error_is_an_error_object_the_model_can_read():
    answer = session().resolve("charge", {"amount": 5})
    assert answer == MockAnswer('{"error": "card declined"}', True, "test:charge.error")
    assert json.loads(answer.output) == {"error": "card declined"}


@pytest.mark.parametrize(
    ("args", "output", "source"),
    [
        pytest.param(
            {"city": "Paris"}, '{"temp": 21}', "test:get_city.when[0].returns", id="literal"
        ),
        pytest.param(
            {"city": "London", "unit": "C"},
            '{"error": "unknown city"}',
            "test:get_city.when[1].error",
            id="regex-subset",
        ),
        pytest.param(
            {"city": "Berlin"}, '{"temp": 0}', "test:get_city.default.returns", id="default"
        ),
        pytest.param({}, '{"temp": 0}', "test:get_city.default.returns", id="missing-key-default"),
    ],
)
def test_when_cases_use_the_argument_matchers(args, output, source):
    answer = session().resolve("get_city", args)
    assert isinstance(answer, MockAnswer)
    assert (answer.output, answer.source) == (output, source)


def test_unparsable_arguments_fall_to_the_default():
    answer = session().resolve("get_city", None, arguments_ok=False)
    assert isinstance(answer, MockAnswer)
    assert answer.source == "test:get_city.default.returns"


def test_unmocked_call_has_the_exact_message():
    miss = session().resolve("get_weather", {"city": "Paris"})
    assert miss == MockMiss(
        'the assistant called get_weather({"city": "Paris"}) but no mock is declared'
    )
    assert unmocked_message("f", "{oops") == "the assistant called f({oops) but no mock is declared"


def test_no_matching_case_and_no_default_is_a_miss():
    miss = session().resolve("strict_city", {"city": "Rome"})
    assert isinstance(miss, MockMiss)
    assert miss.message == (
        'the assistant called strict_city({"city": "Rome"}) but no mock case matches '
        "(1 when-case, no default)"
    )


def test_turn_mocks_override_the_test_mocks_for_that_turn_only():
    s = session()
    turn_mocks = parse({"get_order": {"returns": {"status": "lost"}}, "extra": {"returns": 1}})
    answer = s.resolve("get_order", {}, turn=1, turn_mocks=turn_mocks)
    assert answer == MockAnswer('{"status": "lost"}', False, "turn:get_order.returns")
    assert s.resolve("extra", {}, turn=1, turn_mocks=turn_mocks).output == "1"
    assert s.resolve("get_order", {}, turn=2).output == '{"status": "shipped"}'
    assert isinstance(s.resolve("extra", {}, turn=2), MockMiss)


def test_turn_sequences_start_again_each_turn():
    s = session()
    turn_mocks = parse({"get_rate": {"sequence": [5, 6]}})
    assert s.resolve("get_rate", {}, turn=0, turn_mocks=turn_mocks).output == "5"
    assert s.resolve("get_rate", {}, turn=0, turn_mocks=turn_mocks).output == "6"
    assert s.resolve("get_rate", {}, turn=1, turn_mocks=turn_mocks).output == "5"
    # the test-level sequence was not advanced by the turn's
    assert s.resolve("get_rate", {}, turn=1).output == "1.0"


def test_mocks_from_the_spec_model():
    mocks = mocks_from_spec(
        {
            "get_order": MockSpec("get_order", "returns", returns={"status": "shipped"}),
            "get_rate": MockSpec("get_rate", "sequence", sequence=(1, 2)),
            "charge": MockSpec("charge", "error", error="card declined"),
            "get_city": MockSpec(
                "get_city",
                "when",
                when=(
                    MockCase({"city": "Paris"}, MockOutcome(returns={"temp": 21})),
                    MockCase({"city": {"regex": "^L"}}, MockOutcome(error="unknown city")),
                ),
                default=MockOutcome(returns=None),
            ),
        }
    )
    s = MockSession(mocks)
    assert s.resolve("get_order", {}).output == '{"status": "shipped"}'
    assert [s.resolve("get_rate", {}).output for _ in range(3)] == ["1", "2", "2"]
    assert s.resolve("charge", {}) == MockAnswer(
        '{"error": "card declined"}', True, "test:charge.error"
    )
    assert s.resolve("get_city", {"city": "Paris"}).output == '{"temp": 21}'
    assert s.resolve("get_city", {"city": "Lyon"}).is_error
    assert s.resolve("get_city", {"city": "Rome"}) == MockAnswer(
        "null", False, "test:get_city.default.returns"
    )
    with pytest.raises(MockError, match="bad regex"):
        mocks_from_spec(
            {"f": MockSpec("f", "when", when=(MockCase({"a": {"regex": "("}}, MockOutcome(1)),))}
        )


def test_answer_fills_in_the_recorded_call():
    from assistant_kit.testing.mocks import miss_result
    from assistant_kit.testing.records import CheckStatus, ToolCallRecord

    s = session()
    call = ToolCallRecord.function("call_1", "get_city", '{"city": "Paris"}')
    answered, miss = s.answer(call)
    assert miss is None
    assert (answered.output, answered.mock, answered.is_error) == (
        '{"temp": 21}',
        "test:get_city.when[0].returns",
        False,
    )
    unknown = ToolCallRecord.function("call_2", "get_weather", '{"city": "Paris"}')
    same, miss = s.answer(unknown)
    assert same is unknown
    result = miss_result(miss)
    assert result.status is CheckStatus.FAILED
    assert (
        result.message
        == 'the assistant called get_weather({"city": "Paris"}) but no mock is declared'
    )
