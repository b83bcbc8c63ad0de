"""Each dialect renders the neutral step entries of built-in tool calls its own way, in shapes
its official SDK reads; rows stored before the entries were neutral are converted."""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from dashscope.threads.thread_types import ToolCallsStepDetails as DashScopeToolCalls
from openai.types.beta.threads.runs import ToolCallsStepDetails as OpenAIToolCalls

import assistant_kit.server
from assistant_kit.server.dialects import DASHSCOPE, DIALECTS, OPENAI
from assistant_kit.server.store.migrations import MIGRATIONS


def code_call(output: str | None) -> dict[str, Any]:
    """A code_interpreter call as the engine stores it (``output`` None: still running)."""
    done = output is not None
    return {
        "id": "call_1",
        "type": "code_interpreter",
        "name": "code_interpreter",
        "arguments": json.dumps({"code": "print('hi')"}),
        "output": output,
        "logs": "hi" if done else "",
        "images": ["file-7"] if done else [],
        "urls": [],
        "is_error": False,
    }


def test_openai_shows_a_code_interpreter_call_with_logs_and_image_outputs() -> None:
    entry = OPENAI.tool_call(code_call("hi\n[image: file-7]"))
    assert entry == {
        "id": "call_1",
        "type": "code_interpreter",
        "code_interpreter": {
            "input": "print('hi')",
            "outputs": [
                {"type": "logs", "logs": "hi"},
                {"type": "image", "image": {"file_id": "file-7"}},
            ],
        },
    }
    parsed = OpenAIToolCalls.model_validate({"type": "tool_calls", "tool_calls": [entry]})
    assert parsed.tool_calls[0].code_interpreter.outputs[1].image.file_id == "file-7"


def test_dashscope_keeps_code_interpreter_outputs_empty_and_its_sdk_reads_the_call() -> None:
    entry = DASHSCOPE.tool_call(code_call("hi\n[image: file-7]"))
    assert entry["code_interpreter"] == {
        "input": "print('hi')",
        "outputs": [],
        "output": "hi\n[image: file-7]",
        "file_ids": ["file-7"],
    }
    call = DashScopeToolCalls(type="tool_calls", tool_calls=[entry]).tool_calls[0]
    assert call.code_interpreter.input == "print('hi')"
    assert call.code_interpreter.output == "hi\n[image: file-7]"


@pytest.mark.parametrize("dialect", [OPENAI, DASHSCOPE], ids=lambda d: d.name)
def test_a_running_code_interpreter_call_has_no_outputs(dialect: Any) -> None:
    entry = dialect.tool_call(code_call(None))
    assert entry["code_interpreter"] == {"input": "print('hi')", "outputs": []}


def test_other_builtins_keep_their_type_on_dashscope_and_are_functions_on_openai() -> None:
    call = {
        "id": "call_9",
        "type": "text_to_image",
        "name": "text_to_image",
        "arguments": '{"prompt": "cat"}',
        "output": '{"prompt": "cat"}',
    }
    assert DASHSCOPE.tool_call(call) == {
        "id": "call_9",
        "type": "text_to_image",
        "text_to_image": {"arguments": '{"prompt": "cat"}', "output": '{"prompt": "cat"}'},
    }
    assert OPENAI.tool_call(call) == {
        "id": "call_9",
        "type": "function",
        "function": {
            "name": "text_to_image",
            "arguments": '{"prompt": "cat"}',
            "output": '{"prompt": "cat"}',
        },
    }
    OpenAIToolCalls.model_validate({"type": "tool_calls", "tool_calls": [OPENAI.tool_call(call)]})


def test_steps_stored_with_a_shape_per_dialect_become_neutral() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    names = [m.name for m in MIGRATIONS]
    neutral = MIGRATIONS[names.index("m004_neutral_tool_calls")]
    for migration in MIGRATIONS[: names.index(neutral.name)]:
        for statement in migration.statements():
            db.execute(statement)
    old = {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "wanx",  # the entry's type as the assistant gave it
                "name": "text_to_image",
                "arguments": "{}",
                "output": "done",
                "logs": "",
                "images": [],
                "urls": [],
                "shapes": {
                    "openai": {"id": "call_1", "type": "function", "function": {}},
                    "dashscope": {"id": "call_1", "type": "text_to_image", "text_to_image": {}},
                },
            },
            {"id": "call_2", "type": "function", "name": "f", "arguments": "{}", "output": None},
        ],
    }
    db.execute(
        "INSERT INTO run_steps (id, run_id, thread_id, assistant_id, created_at, type, status,"
        " step_details, metadata, thread_position) VALUES ('s', 'r', 't', 'a', 1, 'tool_calls',"
        " 'completed', ?, '{}', 0)",
        (json.dumps(old),),
    )
    event = {"kind": "step", "record": {"id": "s", "step_details": old}}
    db.execute(
        "INSERT INTO run_events (run_id, thread_id, created_at, event, data)"
        " VALUES ('r', 't', 1, 'thread.run.step.completed', ?)",
        (json.dumps(event),),
    )
    for statement in neutral.statements():
        db.execute(statement)
    (text,) = db.execute("SELECT step_details FROM run_steps").fetchone()
    (data,) = db.execute("SELECT data FROM run_events").fetchone()
    for details in (json.loads(text), json.loads(data)["record"]["step_details"]):
        first, second = details["tool_calls"]
        assert "shapes" not in first and first["type"] == "text_to_image"
        assert second == old["tool_calls"][1]
        assert DASHSCOPE.tool_call(first)["text_to_image"] == {"arguments": "{}", "output": "done"}


def test_no_server_module_outside_the_dialects_asks_which_dialect_it_holds() -> None:
    root = Path(assistant_kit.server.__file__).parent
    names = {d.name for d in DIALECTS}
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "dialects":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            parts = list(ast.walk(node))
            words = {n.id for n in parts if isinstance(n, ast.Name)}
            words |= {n.attr for n in parts if isinstance(n, ast.Attribute)}
            constants = {n.value for n in parts if isinstance(n, ast.Constant)}
            if words & {"OPENAI", "DASHSCOPE"} or (
                constants & names and any("dialect" in w.lower() for w in words)
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []
