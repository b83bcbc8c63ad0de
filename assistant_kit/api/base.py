"""The one client interface to an Assistant API, whatever its wire dialect.

``AssistantClient`` is what the kit (plan/apply, test runner) programs against; ``OpenAIClient``
and ``DashScopeClient`` implement it over an ``httpx.AsyncClient`` they are given. Values that come
back are frozen ``Remote*`` records with timestamps in Unix milliseconds in both dialects and the
raw wire object kept in ``raw``. ``NOT_GIVEN`` tells "leave alone" apart from ``None`` ("clear")::

    client = OpenAIClient(http)                      # http.base_url = "http://127.0.0.1:8900/v1"
    bot = await client.create_assistant(AssistantParams(model="qwen-max", name="Bot"))
    await client.update_assistant(bot.id, AssistantParams(instructions="Be brief."))
    everyone = await client.list_all_assistants()
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from assistant_kit.api.runs import RemoteRun, RemoteRunStep, RunParams, StreamEvent, ToolOutput

T = TypeVar("T")
Order = Literal["asc", "desc"]


class NotGiven:
    """The type of ``NOT_GIVEN``: a parameter the caller did not pass (``None`` clears)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Final = NotGiven()


@dataclass(frozen=True, slots=True)
class AssistantParams:
    """Assistant fields to send on create or update; ``NOT_GIVEN`` ones are left out."""

    model: str | NotGiven = NOT_GIVEN
    name: str | NotGiven | None = NOT_GIVEN
    description: str | NotGiven | None = NOT_GIVEN
    instructions: str | NotGiven | None = NOT_GIVEN
    tools: Sequence[Mapping[str, Any]] | NotGiven = NOT_GIVEN
    metadata: Mapping[str, str] | NotGiven = NOT_GIVEN
    temperature: float | NotGiven | None = NOT_GIVEN
    top_p: float | NotGiven | None = NOT_GIVEN
    top_k: int | NotGiven | None = NOT_GIVEN
    max_tokens: int | NotGiven | None = NOT_GIVEN
    response_format: str | Mapping[str, Any] | NotGiven | None = NOT_GIVEN
    tool_resources: Mapping[str, Any] | NotGiven = NOT_GIVEN
    file_ids: Sequence[str] | NotGiven = NOT_GIVEN

    def given(self) -> dict[str, Any]:
        """The fields to send, as JSON-ready values."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is NOT_GIVEN:
                continue
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, Sequence) and not isinstance(value, str):
                value = [dict(v) if isinstance(v, Mapping) else v for v in value]
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class MessageParams:
    """A message to add to a thread; ``content`` is text or a list of content parts."""

    content: str | Sequence[Mapping[str, Any]]
    role: Literal["user", "assistant"] = "user"
    metadata: Mapping[str, str] | None = None
    file_ids: Sequence[str] = ()

    def body(self) -> dict[str, Any]:
        content = self.content if isinstance(self.content, str) else [dict(p) for p in self.content]
        out: dict[str, Any] = {"role": self.role, "content": content}
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.file_ids:
            out["file_ids"] = list(self.file_ids)
        return out


@dataclass(frozen=True, slots=True)
class RemoteAssistant:
    """An assistant as a target holds it (``created_at`` in ms)."""

    id: str
    created_at: int
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    response_format: Any = None
    tool_resources: Mapping[str, Any] = field(default_factory=dict)
    file_ids: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RemoteThread:
    id: str
    created_at: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RemoteMessage:
    """A thread message; ``content`` is the list of output parts as the target sent them."""

    id: str
    thread_id: str
    created_at: int
    role: str
    content: tuple[Mapping[str, Any], ...] = ()
    assistant_id: str | None = None
    run_id: str | None = None
    status: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def text(self) -> str:
        """The text parts joined together."""
        return "".join(
            str(p.get("text", {}).get("value", "")) for p in self.content if p.get("type") == "text"
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list and the cursors to the next."""

    data: tuple[T, ...]
    first_id: str | None
    last_id: str | None
    has_more: bool


class AssistantClient(abc.ABC):
    """Assistants, threads and messages on one target, in one wire dialect.

    Implementations raise ``ApiError`` (HTTP errors, with ``status``/``code``/``request_id``) and
    ``ApiConnectionError`` (nothing came back). Runs and streams come next on this interface.
    """

    #: The wire dialect it speaks: a name in ``catalog.WIRE_DIALECTS``.
    dialect: str = ""

    # -- assistants --------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_assistant(self, params: AssistantParams) -> RemoteAssistant: ...

    @abc.abstractmethod
    async def get_assistant(self, assistant_id: str) -> RemoteAssistant: ...

    @abc.abstractmethod
    async def update_assistant(
        self, assistant_id: str, params: AssistantParams
    ) -> RemoteAssistant: ...

    @abc.abstractmethod
    async def delete_assistant(self, assistant_id: str) -> None: ...

    @abc.abstractmethod
    async def list_assistants(
        self,
        *,
        limit: int = 20,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RemoteAssistant]: ...

    async def iter_assistants(
        self, *, order: Order = "desc", page_size: int = 100
    ) -> AsyncIterator[RemoteAssistant]:
        """Every assistant, page after page."""
        after: str | None = None
        while True:
            page = await self.list_assistants(limit=page_size, order=order, after=after)
            for item in page.data:
                yield item
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id

    async def list_all_assistants(self, *, order: Order = "desc") -> list[RemoteAssistant]:
        """Every assistant on the target (all pages)."""
        return [a async for a in self.iter_assistants(order=order)]

    # -- threads -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_thread(
        self,
        *,
        messages: Sequence[MessageParams] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> RemoteThread: ...

    @abc.abstractmethod
    async def get_thread(self, thread_id: str) -> RemoteThread: ...

    @abc.abstractmethod
    async def update_thread(
        self, thread_id: str, *, metadata: Mapping[str, str]
    ) -> RemoteThread: ...

    @abc.abstractmethod
    async def delete_thread(self, thread_id: str) -> None: ...

    # -- messages ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_message(self, thread_id: str, message: MessageParams) -> RemoteMessage: ...

    @abc.abstractmethod
    async def get_message(self, thread_id: str, message_id: str) -> RemoteMessage: ...

    @abc.abstractmethod
    async def update_message(
        self, thread_id: str, message_id: str, *, metadata: Mapping[str, str]
    ) -> RemoteMessage: ...

    @abc.abstractmethod
    async def list_messages(
        self,
        thread_id: str,
        *,
        limit: int = 20,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
        run_id: str | None = None,
    ) -> Page[RemoteMessage]: ...

    async def iter_messages(
        self,
        thread_id: str,
        *,
        order: Order = "asc",
        run_id: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[RemoteMessage]:
        """Every message of a thread, oldest first unless ``order="desc"``."""
        after: str | None = None
        while True:
            page = await self.list_messages(
                thread_id, limit=page_size, order=order, after=after, run_id=run_id
            )
            for item in page.data:
                yield item
            if not page.has_more or not page.data:
                return
            after = page.data[-1].id

    async def list_all_messages(
        self, thread_id: str, *, order: Order = "asc", run_id: str | None = None
    ) -> list[RemoteMessage]:
        """Every message of a thread (all pages), oldest first by default."""
        return [m async for m in self.iter_messages(thread_id, order=order, run_id=run_id)]

    # -- runs (see ``assistant_kit.api.runs``; HTTP clients implement these) -----------------

    async def create_run(self, thread_id: str, params: RunParams) -> RemoteRun:
        """Start a run; it comes back queued (or further along) and goes on server-side."""
        raise NotImplementedError

    def stream_run(self, thread_id: str, params: RunParams) -> AsyncIterator[StreamEvent]:
        """Start a run with ``stream: true``; its events up to ``done``."""
        raise NotImplementedError

    async def create_thread_and_run(
        self,
        params: RunParams,
        *,
        messages: Sequence[MessageParams] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> RemoteRun:
        """A new thread with ``messages`` and a run on it (``run.thread_id`` names the thread)."""
        raise NotImplementedError

    def stream_thread_and_run(
        self,
        params: RunParams,
        *,
        messages: Sequence[MessageParams] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Thread-and-run streamed; the first event is ``thread.created``."""
        raise NotImplementedError

    async def get_run(self, thread_id: str, run_id: str) -> RemoteRun:
        raise NotImplementedError

    async def list_runs(
        self,
        thread_id: str,
        *,
        limit: int = 20,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RemoteRun]:
        raise NotImplementedError

    async def update_run(
        self, thread_id: str, run_id: str, *, metadata: Mapping[str, str]
    ) -> RemoteRun:
        raise NotImplementedError

    async def cancel_run(self, thread_id: str, run_id: str) -> RemoteRun:
        """Ask a run to stop (``cancelling``, then ``cancelled``)."""
        raise NotImplementedError

    async def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: Sequence[ToolOutput]
    ) -> RemoteRun:
        """Answer every pending call of a ``requires_action`` run in one submission."""
        raise NotImplementedError

    def stream_submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: Sequence[ToolOutput]
    ) -> AsyncIterator[StreamEvent]:
        """Submit outputs with ``stream: true``; the resumed run's events up to ``done``."""
        raise NotImplementedError

    async def list_run_steps(
        self,
        thread_id: str,
        run_id: str,
        *,
        limit: int = 20,
        order: Order = "asc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RemoteRunStep]:
        raise NotImplementedError

    async def get_run_step(self, thread_id: str, run_id: str, step_id: str) -> RemoteRunStep:
        raise NotImplementedError

    async def wait_run(
        self, thread_id: str, run_id: str, *, timeout: float = 60.0, interval: float = 0.05
    ) -> RemoteRun:
        """Poll until the run needs tool outputs or has ended; ``ApiError`` after ``timeout``."""
        from assistant_kit.errors import ApiError

        deadline = time.monotonic() + timeout
        while True:
            run = await self.get_run(thread_id, run_id)
            if run.terminal or run.requires_action:
                return run
            if time.monotonic() >= deadline:
                raise ApiError(
                    0,
                    "timeout",
                    f"run {run_id} is still {run.status} after {timeout:g}s",
                    dialect=self.dialect,
                )
            await asyncio.sleep(interval)
