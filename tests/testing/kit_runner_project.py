"""A small kit project on disk for the runner's tests: one assistant, a scripted model, a judge.

``write_project(tmp_path, tests)`` writes kit.yaml (every model routed to the scripted backend;
``judge`` to a scripted judge), ``scripts/`` and ``assistants/bot.yaml`` whose ``tests:`` are
``tests``; it returns the project folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

BOT_SCRIPT = {
    "default": "OK.",
    "rules": [
        {
            "user": "(?i)order (\\d+)",
            "tool_calls": [{"name": "get_order", "arguments": '{"id": {1}}'}],
        },
        {"after_tool": "get_order", "reply": "Order status: {output}"},
        {
            "user": "(?i)rates",
            "tool_calls": [
                {"name": "get_rate", "arguments": {"day": "mon"}},
                {"name": "get_rate", "arguments": {"day": "tue"}},
            ],
        },
        {"after_tool": "get_rate", "reply": "Rates: {output}"},
        {
            "user": "(?i)weather in (\\w+)",
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "{1}"}}],
        },
        {"after_tool": "get_weather", "reply": "Weather: {output}"},
        {"user": "(?i)json please", "reply": '{"answer": 42}'},
        {"user": "(?i)capital", "reply": "The capital of France is Paris."},
        {"user": "(?i)^echo (.*)", "reply": "{1}"},
    ],
}

JUDGE_SCRIPT = {
    "rules": [
        {
            "user": "Rubric:\\s*Polite",
            "reply": '{"verdict": "pass", "reason": "it greets the user"}',
        },
        {"user": "Rubric:\\s*Rude", "reply": '{"verdict": "fail", "reason": "nothing rude in it"}'},
        {"user": "Rubric:\\s*Garbled", "reply": "I would rather not grade this."},
    ],
}

TOOLS = [
    {
        "type": "function",
        "name": "get_order",
        "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
    },
    {
        "type": "function",
        "name": "get_rate",
        "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
    },
    {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
]


def write_project(
    root: Path,
    tests: list[dict[str, Any]],
    *,
    kit: dict[str, Any] | None = None,
    delay_ms: int = 0,
    name: str = "bot",
) -> Path:
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "assistants").mkdir(parents=True, exist_ok=True)
    (root / "scripts" / "bot.yaml").write_text(yaml.safe_dump(BOT_SCRIPT), encoding="utf-8")
    (root / "scripts" / "judge.yaml").write_text(yaml.safe_dump(JUDGE_SCRIPT), encoding="utf-8")
    config: dict[str, Any] = {
        "specs": "assistants",
        "server": {
            "models": {
                "default": {
                    "backend": "scripted",
                    "script": "scripts/bot.yaml",
                    "delay_ms": delay_ms,
                },
                "judge": {"backend": "scripted", "script": "scripts/judge.yaml"},
            }
        },
        "test": {"timeout_s": 20, "judge": {"model": "judge"}},
    }
    config.update(kit or {})
    (root / "kit.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    spec = {
        "name": name,
        "model": "demo",
        "instructions": "Be brief.",
        "tools": TOOLS,
        "tests": tests,
    }
    (root / "assistants" / f"{name}.yaml").write_text(
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return root


def one_turn(name: str, user: str, *expect: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A one-turn test."""
    return {"name": name, **extra, "turns": [{"user": user, "expect": list(expect)}]}
