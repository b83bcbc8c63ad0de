from __future__ import annotations

import json

from assistant_kit.api.base import RemoteAssistant
from assistant_kit.sync.apply import ApplyReport, Outcome
from assistant_kit.sync.plan import plan_from
from assistant_kit.sync.render import apply_json, plan_json, render_plan, text_summary

from .specs import make_spec


def managed(name: str, **fields: object) -> RemoteAssistant:
    return RemoteAssistant(
        id=f"asst_{name}",
        created_at=0,
        model="qwen-max",
        name=name,
        metadata={"kit_name": name, "kit_digest": "0" * 64},
        **fields,  # type: ignore[arg-type]
    )


def test_text_summary_is_a_short_hash_and_a_line_count() -> None:
    assert text_summary(None) == "(unset)"
    assert text_summary("one").endswith("(1 line)")
    assert text_summary("a\nb\nc").endswith("(3 lines)")
    assert text_summary("x") != text_summary("y")


def test_plan_text_has_terraform_symbols_diff_and_colour_on_request() -> None:
    plan = plan_from(
        [make_spec("new"), make_spec("old", instructions="keep\nnew line")],
        [managed("old", instructions="keep\nold line"), managed("gone")],
        target="t",
        dialect="dashscope",
        prune=True,
    )
    text = render_plan(plan)
    lines = text.splitlines()
    heads = [line.split()[:3] for line in lines if line.startswith("  ") and "assistant" in line]
    assert heads == [["-", "assistant", '"gone"'], ["+", "assistant", '"new"'],
                     ["~", "assistant", '"old"']]  # fmt: skip
    assert lines[0].endswith("will be deleted (asst_gone)")
    assert lines[1].endswith("will be created")
    assert lines[-1] == "Plan: 1 to create, 1 to update, 1 to delete."
    assert "-old line" not in text
    with_diff = render_plan(plan, diff=True)
    assert "          -old line" in with_diff and "          +new line" in with_diff
    assert "\x1b[" not in text  # plain: the CLI colours it


def test_plan_and_apply_json_carry_every_change_and_outcome() -> None:
    plan = plan_from([make_spec("new")], [], target="t", dialect="openai")
    body = plan_json(plan)
    assert body["summary"] == {"create": 1, "update": 0, "delete": 0, "noop": 0}
    assert body["changes"][0]["fields"][0] == {
        "field": "model",
        "before": None,
        "after": "qwen-max",
    }
    report = ApplyReport(plan, (Outcome(plan.changes[0], False, error="500 boom", attempts=6),))
    applied = apply_json(plan, report)
    assert applied["ok"] is False and applied["result"]["failed"] == 1
    assert applied["applied"][0]["attempts"] == 6
    json.dumps(applied)  # JSON-ready
