"""One turn of a conversation test against a target: message in, streamed run, mocks answered.

``play_turn`` adds the user message, streams a run, answers every ``requires_action`` from the
mocks (all pending calls at once), follows the resumed stream, and returns what happened as a
``TurnRecord``. It never raises for what the target does (a failed run, a timeout, an API error
become ``errors`` on the record); an unmocked call cancels the run and comes back as the miss::

    outcome = await play_turn(client, thread_id, assistant_id, 0, "Where is order 42?",
                              mocks=session, turn_mocks=..., timeout=60)
    outcome.record.reply, outcome.miss
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant_kit.api.base import AssistantClient, MessageParams
from assistant_kit.api.runs import RemoteRun, RemoteRunStep, RunParams, StreamEvent, ToolOutput
from assistant_kit.errors import KitError
from assistant_kit.testing.mocks import MockMiss, MockSession, ToolMock
from assistant_kit.testing.records import ToolCallRecord, TurnRecord, Usage

#: Run statuses that make the turn an ERROR (the assistant never answered).
_BROKEN = {"failed": "failed", "cancelled": "was cancelled", "expired": "expired"}


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """A played turn; ``miss`` is set when the assistant called a function no mock answers."""

    record: TurnRecord
    miss: MockMiss | None = None
    #: The thread the turn ran on (created by the turn when it was given none).
    thread_id: str | None = None


@dataclass(slots=True)
class _Progress:
    """What a turn has gathered so far (kept when a timeout interrupts it)."""

    run: RemoteRun | None = None
    thread_id: str | None = None
    replies: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    calls: list[ToolCallRecord] = field(default_factory=list)
    builtin_ids: set[str] = field(default_factory=set)
    run_ids: list[str] = field(default_factory=list)
    miss: MockMiss | None = None

    def see_run(self, run: RemoteRun) -> None:
        self.run = run
        self.thread_id = self.thread_id or run.thread_id or None
        if run.id and run.id not in self.run_ids:
            self.run_ids.append(run.id)

    @property
    def reply(self) -> str:
        text = "\n\n".join(r for r in self.replies if r)
        return text or "".join(self.partial)


async def play_turn(
    client: AssistantClient,
    thread_id: str | None,
    assistant_id: str,
    index: int,
    user: str,
    *,
    mocks: MockSession,
    turn_mocks: Mapping[str, ToolMock] | None = None,
    timeout: float = 60.0,
    thread_metadata: Mapping[str, str] | None = None,
) -> TurnOutcome:
    """Play one turn (see the module docstring); ``timeout`` bounds the whole turn. Without a
    ``thread_id`` the turn creates its thread, with the user message in it (one round trip)."""
    state = _Progress(thread_id=thread_id)
    errors: list[str] = []
    started = time.perf_counter()

    async def play() -> None:
        params = RunParams(assistant_id=assistant_id)
        if state.thread_id is None:
            thread = await client.create_thread(
                messages=[MessageParams(user)], metadata=thread_metadata
            )
            state.thread_id = thread.id
        else:
            await client.create_message(state.thread_id, MessageParams(user))
        stream = client.stream_run(state.thread_id, params)
        await _drive(client, stream, index, state, mocks, turn_mocks)

    try:
        await asyncio.wait_for(play(), timeout)
    except asyncio.TimeoutError:
        errors.append(f"the turn timed out after {timeout:g}s" + _status_note(state))
        await _cancel(client, state)
    except KitError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        await _cancel(client, state)
    latency_ms = (time.perf_counter() - started) * 1000
    run = state.run
    status = run.status if run is not None else "not started"
    if not errors and state.miss is None and run is not None and run.status in _BROKEN:
        errors.append(_broken(run))
    usage = None
    if run is not None and run.usage is not None:
        usage = Usage(run.usage.prompt_tokens, run.usage.completion_tokens)
    record = TurnRecord(
        index=index,
        user=user,
        reply=state.reply,
        tool_calls=tuple(state.calls),
        usage=usage,
        latency_ms=latency_ms,
        errors=tuple(errors),
        run_ids=tuple(state.run_ids),
        status=status,
    )
    return TurnOutcome(record, state.miss, state.thread_id)


async def _drive(
    client: AssistantClient,
    stream: AsyncIterator[StreamEvent],
    index: int,
    state: _Progress,
    mocks: MockSession,
    turn_mocks: Mapping[str, ToolMock] | None,
) -> None:
    while True:
        await _follow(stream, state)
        run = state.run
        if run is None or not run.requires_action or state.thread_id is None:
            return
        outputs: list[ToolOutput] = []
        for call in run.required_tool_calls:
            record = ToolCallRecord.function(call.id, call.name, call.arguments)
            record, miss = mocks.answer(record, turn=index, turn_mocks=turn_mocks)
            state.calls.append(record)
            if miss is not None and state.miss is None:
                state.miss = miss
            outputs.append(ToolOutput(call.id, record.output or ""))
        if state.miss is not None:
            await _cancel(client, state)
            return
        stream = client.stream_submit_tool_outputs(state.thread_id, run.id, outputs)


async def _follow(stream: AsyncIterator[StreamEvent], state: _Progress) -> None:
    """Read one stream to its end, keeping runs, replies and built-in tool steps."""
    async with contextlib.aclosing(stream) as events:  # type: ignore[type-var]
        async for event in events:
            name = event.event
            if name == "done":
                return
            if event.run is not None:
                state.see_run(event.run)
            elif name == "thread.message.delta":
                state.partial.append(event.text)
            elif name == "thread.message.completed" and event.object is not None:
                if getattr(event.object, "role", "assistant") == "assistant":
                    state.replies.append(event.object.text)
                    state.partial.clear()
            elif name == "thread.run.step.completed" and isinstance(event.object, RemoteRunStep):
                _builtin_calls(event.object, state)


def _builtin_calls(step: RemoteRunStep, state: _Progress) -> None:
    """Tool calls the target ran itself. The OpenAI dialect shows tools it has no step type for
    (quark_search, text_to_image, plug-ins) as ``function`` calls with their output: those are
    told apart from the runner's own function calls by their ids."""
    answered = {c.id for c in state.calls if c.kind == "function"}
    for call in step.tool_calls:
        if call.id in answered or call.id in state.builtin_ids:
            continue
        if call.type == "function" and call.output is None:
            continue  # a function call still waiting for the runner's answer
        state.builtin_ids.add(call.id)
        kind = call.name if call.type == "function" else call.type
        args = _builtin_args(call.arguments)
        state.calls.append(ToolCallRecord.builtin(call.id, kind, args, output=call.output))


def _builtin_args(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"input": raw}
    return value if isinstance(value, dict) else {"input": value}


async def _cancel(client: AssistantClient, state: _Progress) -> None:
    """Cancel the turn's run if it may still be going; never raises (best effort)."""
    thread_id = state.thread_id
    if thread_id is None:
        return

    async def cancel() -> None:
        run = state.run
        if run is None:
            # the stream had not shown the run yet (an in-process stream arrives whole)
            page = await client.list_runs(thread_id, limit=1, order="desc")
            run = page.data[0] if page.data else None
            if run is not None:
                state.see_run(run)
        if run is not None and not run.terminal:
            state.see_run(await client.cancel_run(thread_id, run.id))

    with contextlib.suppress(KitError, asyncio.TimeoutError):
        await asyncio.wait_for(cancel(), 10)


def _status_note(state: _Progress) -> str:
    return f" (the run was {state.run.status})" if state.run is not None else ""


def _broken(run: RemoteRun) -> str:
    text = f"the run {_BROKEN[run.status]}"
    error = run.last_error or {}
    if error:
        code = error.get("code") or "error"
        text += f": {code}: {error.get('message') or ''}".rstrip(": ")
    return text
