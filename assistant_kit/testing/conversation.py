"""One turn of a conversation test against a target: message in, streamed run, mocks answered.

``play_turn`` plays the turn with ``api.turn.TurnDriver``, its hooks answering every
``requires_action`` from the mocks and collecting the tool steps the target ran itself, and
returns what happened as a ``TurnRecord``. It never raises for what the target does (a failed
run, a timeout, an API error become ``errors`` on the record); an unmocked call cancels the run
and comes back as the miss::

    outcome = await play_turn(client, thread_id, assistant_id, 0, "Where is order 42?",
                              mocks=session, turn_mocks=..., timeout=60)
    outcome.record.reply, outcome.miss
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant_kit.api.base import AssistantClient
from assistant_kit.api.runs import RemoteRun, RemoteRunStep, StreamEvent, ToolOutput
from assistant_kit.api.turn import TurnDriver
from assistant_kit.errors import KitError
from assistant_kit.testing.mocks import MockMiss, MockSession, ToolMock
from assistant_kit.testing.records import ToolCallRecord, TurnRecord, Usage


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """A played turn; ``miss`` is set when the assistant called a function no mock answers."""

    record: TurnRecord
    miss: MockMiss | None = None
    #: The thread the turn ran on (created by the turn when it was given none).
    thread_id: str | None = None


class _Calls:
    """The tool calls of one turn: the mocks answer functions, built-in steps are collected."""

    def __init__(
        self, mocks: MockSession, index: int, turn_mocks: Mapping[str, ToolMock] | None
    ) -> None:
        self.mocks = mocks
        self.index = index
        self.turn_mocks = turn_mocks
        self.calls: list[ToolCallRecord] = []
        self.builtin_ids: set[str] = set()
        self.miss: MockMiss | None = None

    async def answer(self, run: RemoteRun) -> list[ToolOutput] | None:
        """Every pending call answered from the mocks; ``None`` (cancel) when one is unmocked."""
        outputs: list[ToolOutput] = []
        for call in run.required_tool_calls:
            record = ToolCallRecord.function(call.id, call.name, call.arguments)
            record, miss = self.mocks.answer(record, turn=self.index, turn_mocks=self.turn_mocks)
            self.calls.append(record)
            if miss is not None and self.miss is None:
                self.miss = miss
            outputs.append(ToolOutput(call.id, record.output or ""))
        return None if self.miss is not None else outputs

    def see(self, event: StreamEvent) -> None:
        if event.event == "thread.run.step.completed" and isinstance(event.object, RemoteRunStep):
            self._builtin_calls(event.object)

    def _builtin_calls(self, step: RemoteRunStep) -> None:
        """Tool calls the target ran itself. The OpenAI dialect shows tools it has no step type
        for (quark_search, text_to_image, plug-ins) as ``function`` calls with their output:
        those are told apart from the runner's own function calls by their ids."""
        answered = {c.id for c in self.calls if c.kind == "function"}
        for call in step.tool_calls:
            if call.id in answered or call.id in self.builtin_ids:
                continue
            if call.type == "function" and call.output is None:
                continue  # a function call still waiting for the runner's answer
            self.builtin_ids.add(call.id)
            kind = call.name if call.type == "function" else call.type
            args = _builtin_args(call.arguments)
            self.calls.append(ToolCallRecord.builtin(call.id, kind, args, output=call.output))


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
    calls = _Calls(mocks, index, turn_mocks)
    driver = TurnDriver(
        client,
        assistant_id,
        answer=calls.answer,
        see=calls.see,
        thread_id=thread_id,
        thread_metadata=thread_metadata,
    )
    errors: list[str] = []
    started = time.perf_counter()
    try:
        await asyncio.wait_for(driver.send(user), timeout)
    except asyncio.TimeoutError:
        status = driver.turn.cut_short_in
        note = f" (the run was {status})" if status is not None else ""
        errors.append(f"the turn timed out after {timeout:g}s{note}")
    except KitError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    except asyncio.CancelledError:
        # Ctrl-C: the driver has cancelled the run; a thread this turn made goes too
        if thread_id is None and driver.thread_id is not None:
            with contextlib.suppress(KitError, asyncio.TimeoutError):
                await asyncio.wait_for(client.delete_thread(driver.thread_id), 10)
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    turn = driver.turn
    problem = turn.problem
    if not errors and calls.miss is None and problem is not None:
        errors.append(problem)
    usage = None
    if turn.run is not None and turn.run.usage is not None:
        usage = Usage(turn.run.usage.prompt_tokens, turn.run.usage.completion_tokens)
    record = TurnRecord(
        index=index,
        user=user,
        reply=turn.reply,
        tool_calls=tuple(calls.calls),
        usage=usage,
        latency_ms=latency_ms,
        errors=tuple(errors),
        run_ids=tuple(turn.run_ids),
        status=turn.status,
    )
    return TurnOutcome(record, calls.miss, driver.thread_id)


def _builtin_args(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"input": raw}
    return value if isinstance(value, dict) else {"input": value}
