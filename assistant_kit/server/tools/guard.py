"""What every built-in tool shares: a timeout, an output cap, and failures turned into outputs.

A tool's failure is something for the model to read and work around, never a failed run::

    return await guarded("quark_search", self._search(query), timeout_s=10, max_chars=8000)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from typing import Any

from assistant_kit.errors import ToolError
from assistant_kit.server.tools.base import ToolOutput

log = logging.getLogger(__name__)

#: Characters of output a tool returns to the model unless configured otherwise.
DEFAULT_MAX_CHARS = 16_000


def cap_text(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters, saying how much was left out."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n[output truncated: {len(text) - max_chars} more characters]"


def error_output(tool: str, message: str) -> ToolOutput:
    """An error the model reads as the tool's output."""
    return ToolOutput(output=f"{tool} failed: {message}", is_error=True)


async def guarded(
    tool: str,
    work: Awaitable[ToolOutput],
    *,
    timeout_s: float,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> ToolOutput:
    """Await ``work`` within ``timeout_s``, cap its text, turn any failure into an error output."""
    try:
        result = await asyncio.wait_for(work, timeout_s)
    except asyncio.TimeoutError:
        return error_output(tool, f"timed out after {timeout_s:g} s")
    except ToolError as exc:
        return error_output(tool, str(exc))
    except Exception as exc:  # the run goes on; the model hears what went wrong
        log.warning("built-in tool %s failed", tool, exc_info=True)
        return error_output(tool, f"{type(exc).__name__}: {exc}")
    return replace(
        result,
        output=cap_text(result.output, max_chars),
        logs=cap_text(result.logs, max_chars),
    )


def string_argument(arguments: Mapping[str, Any], *names: str) -> str:
    """The first of ``names`` present in ``arguments`` as a non-empty string, else ToolError."""
    for name in names:
        value = arguments.get(name)
        if isinstance(value, str) and value.strip():
            return value
    raise ToolError(f"missing the {names[0]!r} argument (a non-empty string)")


def to_json(value: Any) -> str:
    """JSON the model reads: compact, unicode kept."""
    return json.dumps(value, ensure_ascii=False)
