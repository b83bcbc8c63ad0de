"""One turn of a conversation: a user message and the assistant's reply, driven to its end.

``kit test``, ``kit chat`` and the judge all play turns through ``TurnDriver``: the message goes
on the thread (a new thread for the first one), a run streams, every ``requires_action`` is
answered through the ``answer`` hook (all pending calls at once) and the resumed stream is
followed, until the run ends. ``see`` is shown every event as it arrives. When the turn stops
early (an ``ApiError``, a timeout, Ctrl-C cancelling the task) the run it left going is cancelled,
best effort, before the exception goes on, so the thread takes the next message::

    async def answer(run: RemoteRun) -> list[ToolOutput] | None:   # None: give up, cancel
        return [ToolOutput(c.id, lookup(**c.args)) for c in run.required_tool_calls]

    driver = TurnDriver(client, assistant_id, answer=answer, see=show)
    turn = await driver.send("Where is order 42?")
    turn.reply, turn.run.status, driver.thread_id

The driver uses six operations of ``AssistantClient`` (``create_thread``, ``create_message``,
``stream_run``, ``stream_submit_tool_outputs``, ``cancel_run``, ``list_runs``) and the neutral
records of ``assistant_kit.api.runs``, never a dialect's wire shapes: a client of another wire
plays turns by providing those (a conversation for the thread, a response for the run,
function-call outputs for tool outputs).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from assistant_kit.api.base import AssistantClient, MessageParams, RemoteMessage
from assistant_kit.api.runs import RemoteRun, RunParams, StreamEvent, ToolOutput
from assistant_kit.errors import KitError

__all__ = ["BROKEN", "Answer", "See", "Turn", "TurnDriver"]

#: Answers every pending call of a ``requires_action`` run; ``None`` gives up (the run is
#: cancelled and the turn ends ``declined``).
Answer = Callable[[RemoteRun], Awaitable[Sequence[ToolOutput] | None]]
#: Sees each stream event as it arrives (``done`` included).
See = Callable[[StreamEvent], None]

#: Run statuses in which the assistant never answered, and how a message says so.
BROKEN: Mapping[str, str] = {"failed": "failed", "cancelled": "was cancelled", "expired": "expired"}
#: Seconds the clean-up after an interrupted turn may take.
CANCEL_TIMEOUT = 10.0


@dataclass(slots=True)
class Turn:
    """What one turn gathered (kept as far as it got when the turn was cut short)."""

    #: The run as last seen (``None``: no run was seen).
    run: RemoteRun | None = None
    #: Every run the turn saw, in order.
    run_ids: list[str] = field(default_factory=list)
    #: The texts of the assistant messages completed so far.
    replies: list[str] = field(default_factory=list)
    #: Text of the message still being written.
    partial: list[str] = field(default_factory=list)
    #: The ``answer`` hook gave up, so the run was cancelled.
    declined: bool = False
    #: The run's status when an exception cut the turn short (before cancelling it).
    cut_short_in: str | None = None

    @property
    def reply(self) -> str:
        """The reply: the completed messages, else whatever text had arrived."""
        return "\n\n".join(r for r in self.replies if r) or "".join(self.partial)

    @property
    def status(self) -> str:
        return self.run.status if self.run is not None else "not started"

    @property
    def problem(self) -> str | None:
        """Why the assistant never answered (``the run failed: code: message``), else ``None``."""
        run = self.run
        if run is None or run.status not in BROKEN:
            return None
        text = f"the run {BROKEN[run.status]}"
        error = run.last_error or {}
        if error:
            text += f": {error.get('code') or 'error'}: {error.get('message') or ''}".rstrip(": ")
        return text

    def see_run(self, run: RemoteRun) -> None:
        self.run = run
        if run.id and run.id not in self.run_ids:
            self.run_ids.append(run.id)


class TurnDriver:
    """Plays the turns of one conversation on one thread (created by the first turn)."""

    def __init__(
        self,
        client: AssistantClient,
        assistant_id: str,
        *,
        answer: Answer | None = None,
        see: See | None = None,
        thread_id: str | None = None,
        thread_metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.assistant_id = assistant_id
        self.answer = answer
        self.see = see
        #: The conversation's thread (``None`` until the first turn creates it).
        self.thread_id = thread_id
        self.thread_metadata = thread_metadata
        #: The turn being played, or the last one played.
        self.turn = Turn()

    async def send(self, message: str | MessageParams) -> Turn:
        """Play one turn (see the module docstring); ``self.turn`` holds it while it plays.

        A run that needs tool outputs with no ``answer`` hook is cancelled (``declined``).
        """
        self.turn = turn = Turn()
        if isinstance(message, str):
            message = MessageParams(message)
        try:
            if self.thread_id is None:
                thread = await self.client.create_thread(
                    messages=[message], metadata=self.thread_metadata
                )
                self.thread_id = thread.id
            else:
                await self.client.create_message(self.thread_id, message)
            params = RunParams(assistant_id=self.assistant_id)
            stream = self.client.stream_run(self.thread_id, params)
            while True:
                await self._follow(stream, turn)
                run = turn.run
                if run is None or not run.requires_action:
                    return turn
                outputs = await self.answer(run) if self.answer is not None else None
                if outputs is None:
                    turn.declined = True
                    await self.cancel()
                    return turn
                stream = self.client.stream_submit_tool_outputs(self.thread_id, run.id, outputs)
        except BaseException:
            turn.cut_short_in = turn.run.status if turn.run is not None else None
            await self.cancel()
            raise

    async def cancel(self) -> None:
        """Cancel the current turn's run if it may still be going; never raises (best effort)."""
        thread_id, turn = self.thread_id, self.turn
        if thread_id is None:
            return

        async def cancel() -> None:
            run = turn.run
            if run is None:
                # the stream had not shown the run yet (an in-process stream arrives whole)
                page = await self.client.list_runs(thread_id, limit=1, order="desc")
                run = page.data[0] if page.data else None
                if run is not None:
                    turn.see_run(run)
            if run is not None and not run.terminal:
                turn.see_run(await self.client.cancel_run(thread_id, run.id))

        with contextlib.suppress(KitError, asyncio.TimeoutError):
            await asyncio.wait_for(cancel(), CANCEL_TIMEOUT)

    async def _follow(self, stream: AsyncIterator[StreamEvent], turn: Turn) -> None:
        """Read one stream to its end, keeping the run and the reply."""
        async with contextlib.aclosing(stream) as events:  # type: ignore[type-var]
            async for event in events:
                if self.see is not None:
                    self.see(event)
                name = event.event
                if name == "done":
                    return
                if event.run is not None:
                    turn.see_run(event.run)
                elif name == "thread.message.delta":
                    turn.partial.append(event.text)
                elif (
                    name == "thread.message.completed"
                    and isinstance(event.object, RemoteMessage)
                    and event.object.role == "assistant"
                ):
                    turn.replies.append(event.object.text)
                    turn.partial.clear()
