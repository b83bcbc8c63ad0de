"""Object ids and clocks, kept dialect-neutral in the store.

The store holds a bare UUID for every object; each wire dialect renders it with its own prefix
(``Dialect.id``: DashScope ``message_``, OpenAI ``msg_``) and accepts any dialect's prefix on
input, so an object created through one dialect can be addressed through another::

    uid = new_id()                               # "3f2a91c4-..."
    DASHSCOPE.id("message", uid)                 # "message_3f2a91c4-..."
    parse_id("message", "msg_3f2a91c4-...")      # "3f2a91c4-..."
"""

from __future__ import annotations

import time
import uuid

#: Every id prefix a dialect writes, per kind (each ``Dialect.prefixes`` is a subset): any of
#: them is accepted on input. Longest first, so that no prefix hides a longer one.
ACCEPTED: dict[str, tuple[str, ...]] = {
    "assistant": ("asst_",),
    "thread": ("thread_", "conv_"),
    "message": ("message_", "msg_"),
    "run": ("run_",),
    "step": ("step_",),
    "file": ("file-", "file_"),
    "vector_store": ("vs_",),
    "file_batch": ("vsfb_",),
    "upload": ("upload_",),
    "part": ("part_",),
    "response": ("resp_",),
}

#: The prefix of the file ids that tool results and message content carry (``file_ref``).
FILE_REF_PREFIX = "file-"


def new_id() -> str:
    """A fresh neutral id (a UUID4 in its canonical text form)."""
    return str(uuid.uuid4())


def parse_id(kind: str, wire_id: str) -> str | None:
    """The stored id behind a wire id of any dialect, or ``None`` if it cannot be one."""
    for prefix in ACCEPTED[kind]:
        if wire_id.startswith(prefix):
            rest = wire_id[len(prefix) :]
            try:
                return str(uuid.UUID(rest))
            except ValueError:
                return None
    return None


def file_ref(uid: str) -> str:
    """The id a stored file goes by in tool results and message content (any dialect reads it)."""
    return FILE_REF_PREFIX + uid


def new_call_id() -> str:
    """A fresh tool call id (``call_`` and 24 hex digits, as OpenAI's look)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def now_ms() -> int:
    """Wall-clock time in Unix milliseconds, the unit the store keeps."""
    return time.time_ns() // 1_000_000
