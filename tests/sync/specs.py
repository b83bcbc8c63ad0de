"""Small spec builders for the sync tests."""

from __future__ import annotations

from typing import Any

from assistant_kit.spec.model import AssistantSpec


def make_spec(name: str, **data: Any) -> AssistantSpec:
    """A rendered spec: ``instructions`` is taken as the rendered text."""
    instructions = data.pop("instructions", None)
    body = {"name": name, "model": data.pop("model", "qwen-max"), **data}
    return AssistantSpec.from_data(body, instructions=instructions)


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
