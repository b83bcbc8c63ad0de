"""The records the server keeps, and the ``Table`` that maps each onto its rows.

Every table follows one pattern: ``seq`` + ``id`` (neutral UUID) + ``created_at`` (ms) +
columns, JSON values as text. A ``Table`` names that mapping for a frozen record dataclass, so
the generic ``Store`` operations (``insert`` / ``get`` / ``update`` / ``delete`` / ``list_page``)
serve any table: a new kind of object is a record and a ``Table`` here, a migration, and its
entry in ``THREAD_CHILDREN`` when a thread owns it::

    RUNS = Table("runs", RunRecord, json_columns={"tools", "metadata", "usage"}, scope="thread_id")
    run = await store.get(RUNS, run_id, thread_id=thread_id)

Run event data is stored dialect-neutral: ``{"kind": "run" | "step" | "message" | "thread",
"record": {...}}`` for snapshots, ``{"kind": "message_delta" | "step_delta", ...}`` for deltas;
each dialect renders them when a stream reads them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

R = TypeVar("R")

#: A run in one of these holds its thread: no new messages or runs meanwhile.
ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
#: Statuses a run never leaves.
TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")
#: Run statuses at which a stream (one create or one submit) ends.
STREAM_END = ("requires_action", *TERMINAL)

#: Tables whose rows belong to a thread (a ``thread_id`` column): deleting the thread deletes
#: them in the same transaction. A fixed list: a new thread-owned table adds its name here.
THREAD_CHILDREN = ("messages", "runs", "run_steps", "run_events", "files", "responses")

#: One entry for a run's event log: the event name and its JSON-ready data.
EventEntry = tuple[str, Any]


def dumps(value: Any) -> str:
    """JSON as the store keeps it (compact, UTF-8 kept as is). orjson, ~10x faster than the
    stdlib on run snapshots (bench/run_path.py); the stdlib for what orjson refuses (integers
    beyond 64 bits, non-string keys), so both write the same text."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """A value the store wrote with ``dumps`` (the stdlib for what orjson refuses: ``NaN``
    in rows older stores wrote, integers beyond 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def record_data(record: Any) -> dict[str, Any]:
    """A record as a JSON-ready dict (for the event log)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssistantRecord:
    id: str
    created_at: int
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    tool_resources: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    response_format: Any = None


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    id: str
    created_at: int
    metadata: dict[str, str] = field(default_factory=dict)
    tool_resources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A thread message; ``content`` holds output-form parts (``{"type": "text", ...}``)."""

    id: str
    thread_id: str
    created_at: int
    role: str
    content: list[dict[str, Any]]
    assistant_id: str | None = None
    run_id: str | None = None
    file_ids: list[str] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = "completed"
    incomplete_details: dict[str, Any] | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run with its effective settings (run override, else the assistant's)."""

    id: str
    thread_id: str
    assistant_id: str
    created_at: int
    status: str
    model: str
    instructions: str = ""
    additional_instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: dict[str, Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool = True
    response_format: Any = None
    #: ``{"tool_calls": [{id, name, arguments}], "step_id": ...}`` while requires_action.
    required_action: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    #: ``{"prompt_tokens", "completion_tokens"}`` totals so far (None until the first call ends).
    usage: dict[str, int] | None = None
    started_at: int | None = None
    expires_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None
    model_calls: int = 0


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A run step; ``step_details`` is neutral (see ``tool_call`` entries below).

    A tool call entry: ``{"id", "type": "function" | <built-in type>, "name", "arguments",
    "output": str | None, "logs": str, "images": [file ids], "urls": [...]}``.
    ``thread_position`` is the ``seq`` of the thread's newest message when the step was made, so
    the transcript puts the step right after that message.
    """

    id: str
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: int
    type: str
    status: str
    step_details: dict[str, Any]
    last_error: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    completed_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    thread_position: int = 0


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A stored file's metadata (the bytes are read apart, by ``FileStore.content``)."""

    id: str
    created_at: int
    filename: str
    purpose: str
    mime_type: str
    bytes: int
    thread_id: str | None = None
    run_id: str | None = None
    #: When an uploaded file goes (``expires_after`` on upload); ``None``: kept.
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A file being uploaded in parts (OpenAI's Uploads API); ``file_id`` once completed."""

    id: str
    created_at: int
    filename: str
    purpose: str
    bytes: int
    mime_type: str
    expires_at: int
    status: str = "pending"
    file_id: str | None = None


@dataclass(frozen=True, slots=True)
class UploadPartRecord:
    """One part of an upload, its bytes included."""

    id: str
    created_at: int
    upload_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """What the Responses API keeps beside the run a response is (same id as the run).

    ``stored`` is the request's ``store``: an unstored response still chains through
    ``previous_response_id`` but cannot be retrieved. ``conversation`` says the thread was named
    by the caller (``conversation=``) rather than made for a chain. ``input_ids`` are the ids of
    the messages the request's input became; ``settings`` the request fields only this surface
    renders (``text``, ``truncation``, ``reasoning``, ``max_output_tokens``, tools as given...).
    """

    id: str
    created_at: int
    thread_id: str
    stored: bool
    previous_response_id: str | None
    conversation: bool
    input_ids: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a run's event log."""

    seq: int
    run_id: str
    event: str
    data: dict[str, Any]


# -- tables ----------------------------------------------------------------------------------


class Table(Generic[R]):
    """How a record dataclass maps onto a table: columns in field order, JSON ones as text.

    ``scope`` names the column that scopes lookups (``thread_id`` for messages), so an id is only
    found under its parent.
    """

    def __init__(
        self,
        name: str,
        record: type[R],
        *,
        json_columns: Sequence[str] = (),
        scope: str | None = None,
    ) -> None:
        self.name = name
        self.record = record
        self.columns = tuple(f.name for f in dataclasses.fields(record))  # type: ignore[arg-type]
        self.json_columns = frozenset(json_columns)
        self.scope = scope
        self._json_at = tuple(i for i, c in enumerate(self.columns) if c in self.json_columns)

    def to_row(self, record: R) -> tuple[Any, ...]:
        json_columns = self.json_columns
        return tuple(
            dumps(v) if c in json_columns and v is not None else v
            for c, v in ((c, getattr(record, c)) for c in self.columns)
        )

    def from_row(self, row: Sequence[Any]) -> R:
        values = list(row)
        for i in self._json_at:
            if values[i] is not None:
                values[i] = loads(values[i])
        return self.record(*values)

    def encode(self, column: str, value: Any) -> Any:
        if column not in self.columns or column in ("id", "created_at"):
            raise ValueError(f"{self.name}.{column} cannot be updated")
        return dumps(value) if column in self.json_columns and value is not None else value


ASSISTANTS: Table[AssistantRecord] = Table(
    "assistants",
    AssistantRecord,
    json_columns=("tools", "file_ids", "tool_resources", "metadata", "response_format"),
)
THREADS: Table[ThreadRecord] = Table(
    "threads", ThreadRecord, json_columns=("metadata", "tool_resources")
)
MESSAGES: Table[MessageRecord] = Table(
    "messages",
    MessageRecord,
    json_columns=("content", "file_ids", "attachments", "metadata", "incomplete_details"),
    scope="thread_id",
)
UPLOADS: Table[UploadRecord] = Table("uploads", UploadRecord)
UPLOAD_PARTS: Table[UploadPartRecord] = Table("upload_parts", UploadPartRecord, scope="upload_id")
RUNS: Table[RunRecord] = Table(
    "runs",
    RunRecord,
    json_columns=(
        "tools",
        "file_ids",
        "metadata",
        "truncation_strategy",
        "tool_choice",
        "response_format",
        "required_action",
        "last_error",
        "incomplete_details",
        "usage",
    ),
    scope="thread_id",
)
STEPS: Table[StepRecord] = Table(
    "run_steps",
    StepRecord,
    json_columns=("step_details", "last_error", "usage", "metadata"),
    scope="run_id",
)
#: The bytes of a file are kept beside its row (``Store.insert_file`` / ``file_content``).
FILES: Table[FileRecord] = Table("files", FileRecord)
RESPONSES: Table[ResponseRecord] = Table(
    "responses", ResponseRecord, json_columns=("input_ids", "settings"), scope="thread_id"
)
