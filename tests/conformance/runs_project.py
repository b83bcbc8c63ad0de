"""A throwaway kit project whose models are scripted, for run tests against ``kit serve``.

``write_project(folder)`` writes ``kit.yaml`` (``server.models`` routing every name to the
scripted backend, ``slow`` to the same script with a delay per model call) and the script, so
``running_kit_server(output_dir=folder)`` serves runs without a real model.
"""

from __future__ import annotations

from pathlib import Path

SCRIPT = """\
default: "I can help with painting techniques, art history and creative ideas."
rules:
  - user: "(?i)draw a picture of (?:a |an )?(?P<what>[^.]+)"
    reply: "Here is a {what}: a fluffy cat with blue eyes, a cream coat and soft colorpoint ears."
  - user: "(?i)weather in (\\\\w+) and (\\\\w+)"
    tool_calls:
      - {name: get_weather, arguments: {city: "{1}"}}
      - {name: get_weather, arguments: {city: "{2}"}}
  - user: "(?i)weather in (\\\\w+)"
    tool_calls:
      - {name: get_weather, arguments: {city: "{1}"}}
  - after_tool: get_weather
    reply: "The weather is {output}."
  - user: "(?i)^count"
    reply: "one two three four five six seven eight nine ten"
"""

KIT_YAML = """\
server:
  models:
    default: {backend: scripted, script: scripts/models.yaml}
    slow: {backend: scripted, script: scripts/models.yaml, delay_ms: %(delay)d}
"""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def write_project(folder: Path, *, delay_ms: int = 1500) -> Path:
    """Write kit.yaml and its model script into ``folder``; returns ``folder``."""
    (folder / "scripts").mkdir(parents=True, exist_ok=True)
    (folder / "scripts" / "models.yaml").write_text(SCRIPT, encoding="utf-8")
    (folder / "kit.yaml").write_text(KIT_YAML % {"delay": delay_ms}, encoding="utf-8")
    return folder
