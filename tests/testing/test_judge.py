"""The judge's prompt and the strict reader of its reply."""

from __future__ import annotations

import pytest

from assistant_kit.testing.judge import JUDGE_SYSTEM, JudgeError, judge_prompt, parse_judge_reply


def test_prompt_carries_the_rubric_and_transcript():
    messages = judge_prompt("Answers politely", "User: hi\nAssistant: hello")
    assert messages[0] == {"role": "system", "content": JUDGE_SYSTEM}
    assert messages[1]["role"] == "user"
    assert "Rubric:\nAnswers politely" in messages[1]["content"]
    assert "Transcript:\nUser: hi\nAssistant: hello" in messages[1]["content"]


@pytest.mark.parametrize(
    ("reply", "verdict", "reason"),
    [
        pytest.param('{"verdict": "pass", "reason": "polite"}', True, "polite", id="plain"),
        pytest.param('{"verdict": "FAIL", "reason": "rude"}', False, "rude", id="upper"),
        pytest.param('{"verdict": true}', True, "", id="bool-no-reason"),
        pytest.param(
            'Sure.\n```json\n{"verdict": "no", "reason": "curt"}\n```', False, "curt", id="fenced"
        ),
        pytest.param(
            '{"verdict": "yes", "reason": ["a", "b"]}', True, '["a", "b"]', id="list-reason"
        ),
    ],
)
def test_reads_a_verdict(reply, verdict, reason):
    assert parse_judge_reply(reply) == (verdict, reason)


@pytest.mark.parametrize(
    ("reply", "fragment"),
    [
        pytest.param("It is fine.", "no JSON object", id="prose"),
        pytest.param("{verdict: pass}", "not valid JSON", id="bad-json"),
        pytest.param('{"verdict": "maybe"}', "must be pass or fail", id="maybe"),
        pytest.param('{"reason": "x"}', "must be pass or fail", id="missing"),
        pytest.param('{"verdict": 1}', "must be pass or fail", id="number"),
    ],
)
def test_garbage_is_a_judge_error(reply, fragment):
    with pytest.raises(JudgeError, match=fragment):
        parse_judge_reply(reply)
