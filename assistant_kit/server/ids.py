"""Object ids and clocks, kept dialect-neutral in the store.

The store holds a bare UUID for every object; each wire dialect renders it with its own prefix
(DashScope ``message_``, OpenAI ``msg_``) and accepts either prefix on input, so an object created
through one dialect can be addressed through the other::

    uid = new_id()                               # "3f2a91c4-..."
    render_id("message", uid, "dashscope")       # "message_3f2a91c4-..."
    parse_id("message", "msg_3f2a91c4-...")      # "3f2a91c4-..."
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

Kind = Literal["assistant", "thread", "message", "run", "step", "file"]
DialectName = Literal["openai", "dashscope"]

#: kind -> {dialect: prefix}; the first prefix of a kind's accepted list is never ambiguous.
PREFIXES: dict[str, dict[str, str]] = {
    "assistant": {"openai": "asst_", "dashscope": "asst_"},
    "thread": {"openai": "thread_", "dashscope": "thread_"},
    "message": {"openai": "msg_", "dashscope": "message_"},
    "run": {"openai": "run_", "dashscope": "run_"},
    "step": {"openai": "step_", "dashscope": "step_"},
    "file": {"openai": "file-", "dashscope": "file_"},
}

_ACCEPTED: dict[str, tuple[str, ...]] = {
    kind: tuple(sorted(set(prefixes.values()), key=len, reverse=True))
    for kind, prefixes in PREFIXES.items()
}


def new_id() -> str:
    """A fresh neutral id (a UUID4 in its canonical text form)."""
    return str(uuid.uuid4())


def render_id(kind: str, uid: str | None, dialect: str) -> str | None:
    """The wire form of a stored id in ``dialect`` (``None`` stays ``None``)."""
    if uid is None:
        return None
    return PREFIXES[kind][dialect] + uid


def parse_id(kind: str, wire_id: str) -> str | None:
    """The stored id behind a wire id of either dialect, or ``None`` if it cannot be one."""
    for prefix in _ACCEPTED[kind]:
        if wire_id.startswith(prefix):
            rest = wire_id[len(prefix) :]
            try:
                return str(uuid.UUID(rest))
            except ValueError:
                return None
    return None


def new_call_id() -> str:
    """A fresh tool call id (``call_`` and 24 hex digits, as OpenAI's look)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def now_ms() -> int:
    """Wall-clock time in Unix milliseconds, the unit the store keeps."""
    return time.time_ns() // 1_000_000
