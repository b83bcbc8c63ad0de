"""One model call of a run, and the steps, messages and events it produces.

The engine's run task makes one ``ModelCall`` after another: each streams into a
``message_creation`` step (text) or a ``tool_calls`` step (calls). Built-in tools run here and
the task calls the model again; function calls move the run to ``requires_action`` and the task
ends (``submit_tool_outputs`` starts a new one). A call's writes (steps, messages, deltas) are
committed in batches: within ``FLUSH_S`` seconds of the first pending one, every
``FLUSH_EVENTS`` events, and with the run's final status in the same transaction, so a fast
model costs a couple of commits per run, not one per fragment, while a slow one is still
streamed as it goes.

A call sees its engine only as a ``RunWriter`` (the store, conditional run moves, finishing a
run, waking stream readers), so this module imports nothing of the engine::

    more = await ModelCall(writer, CallConfig(router, tools, 25, save_file), run).call()
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant_kit.errors import ModelError
from assistant_kit.server.ids import new_call_id, new_id, now_ms
from assistant_kit.server.knowledge.citations import annotate
from assistant_kit.server.models.base import (
    Finish,
    ModelBackend,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.runs.history import HistoryCache, thread_history
from assistant_kit.server.runs.transcript import Truncation, build_prompt, prompt_budget
from assistant_kit.server.store.base import Store, Tx
from assistant_kit.server.store.records import (
    EventEntry,
    MessageRecord,
    RunRecord,
    StepRecord,
    record_data,
)
from assistant_kit.server.tools.base import SaveFile
from assistant_kit.server.tools.runner import (
    Enabled,
    Tools,
    call_builtin,
    offered_tools,
)

FLUSH_S = 0.02
FLUSH_EVENTS = 64


class RunWriter(Protocol):
    """What a model call needs of the engine that drives its run."""

    @property
    def store(self) -> Store: ...

    def transition(
        self,
        run_id: str,
        status: str,
        *,
        when: Sequence[str],
        changes: Mapping[str, Any] | None = None,
        events: Sequence[str] = (),
        before: Callable[[Tx], list[EventEntry]] | None = None,
    ) -> RunRecord | None:
        """Move the run to ``status`` if it is in one of ``when``, committing ``before(tx)``'s
        writes and events in the same unit of work; None if the run had moved on."""
        ...

    def finish(
        self, run_id: str, status: str, *, last_error: Mapping[str, Any] | None = None
    ) -> bool:
        """End the run as cancelled / expired / failed."""
        ...

    def notify(self, run_id: str) -> None:
        """Wake the run's stream readers (new events were committed)."""
        ...


@dataclass(frozen=True, slots=True)
class CallConfig:
    """What every model call of one engine uses: models, built-in tools, limits."""

    router: ModelRouter | None
    tools: Tools
    max_model_calls: int
    save_file: SaveFile | None


@dataclass(slots=True)
class _Call:
    id: str
    name: str
    arguments: str = ""
    builtin: Enabled | None = None


@dataclass(slots=True)
class ModelCall:
    """One model call of a run and everything it writes."""

    writer: RunWriter
    config: CallConfig
    run: RunRecord
    #: Writes not yet committed: statements (``op(tx)``) and the events announcing them.
    ops: list[Callable[[Tx], object]] = field(default_factory=list)
    buffer: list[EventEntry] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    message: MessageRecord | None = None
    message_step: StepRecord | None = None
    tool_step: StepRecord | None = None
    text: str = ""
    calls: dict[int, _Call] = field(default_factory=dict)
    #: The run's history as the previous call of this run loaded it.
    history: HistoryCache = field(default_factory=HistoryCache)

    # -- the call ----------------------------------------------------------------------------

    async def call(self) -> bool:
        """Make one model call; True when the loop should call the model again."""
        config, run = self.config, self.run
        store = self.writer.store
        try:
            backend = await self._backend()
        except ModelError as exc:
            return self._fail(exc.code, str(exc))
        offered, builtins = offered_tools(run.tools, config.tools)
        used = Usage(**(run.usage or {}))
        tool_choice: Any = run.tool_choice if run.tool_choice is not None else "auto"
        if isinstance(tool_choice, Mapping) and tool_choice.get("type") != "function":
            # {"type": "code_interpreter"}: force the function that stands for that built-in
            wanted = tool_choice.get("type")
            name = next((n for n, e in builtins.items() if wanted in (e.kind, e.tool.type)), None)
            tool_choice = {"type": "function", "function": {"name": name}} if name else "auto"
        if run.model_calls >= config.max_model_calls:
            tool_choice = "none"
        max_tokens = run.max_tokens
        if run.max_completion_tokens is not None:
            left = run.max_completion_tokens - used.completion_tokens
            if left <= 0:
                return self._incomplete("max_completion_tokens", used)
            max_tokens = left if max_tokens is None else min(max_tokens, left)
        truncation = Truncation.from_api(run.truncation_strategy)
        window = backend.context_window(run.model)
        if truncation.type == "last_messages":
            history = thread_history(
                store, run.thread_id, messages=truncation.last_messages, cache=self.history
            )
        else:
            budget = prompt_budget(window, run.max_prompt_tokens)
            history = thread_history(
                store,
                run.thread_id,
                tokens=budget,
                count=backend.count_tokens,
                cache=self.history,
            )
        prompt = build_prompt(
            backend,
            instructions=run.instructions,
            additional_instructions=run.additional_instructions,
            history=history,
            truncation=truncation,
            max_prompt_tokens=run.max_prompt_tokens,
            context_window=window,
        )
        if prompt.incomplete_reason:
            return self._incomplete(prompt.incomplete_reason, used)
        response_format = run.response_format
        if response_format in ("json_object", "text"):  # DashScope's Java SDK sends the bare type
            response_format = {"type": response_format}
        if not isinstance(response_format, Mapping):
            response_format = None
        request = ModelRequest(
            model=run.model,
            messages=prompt.messages,
            tools=tuple(offered),
            tool_choice=tool_choice if offered else "none",
            parallel_tool_calls=bool(run.parallel_tool_calls),
            temperature=run.temperature,
            top_p=run.top_p,
            top_k=run.top_k,
            max_tokens=max_tokens,
            response_format=response_format,
        )
        calls_made = run.model_calls + 1
        self.ops.append(lambda tx: tx.set_run(run.id, {"model_calls": calls_made}))
        finish: Finish | None = None
        try:
            async for event in backend.stream(request):
                if isinstance(event, TextDelta):
                    if event.text:
                        self._text(event.text)
                elif isinstance(event, ToolCallDelta):
                    self._tool_fragment(event, builtins)
                elif isinstance(event, Finish):
                    finish = event
                if len(self.buffer) >= FLUSH_EVENTS:
                    self._flush()
                elif self.buffer and self.timer is None:
                    # a slow model: show what came so far within FLUSH_S
                    loop = asyncio.get_running_loop()
                    self.timer = loop.call_later(FLUSH_S, self._flush)
        except ModelError as exc:
            self._flush()
            return self._fail(exc.code, str(exc))
        finally:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        if finish is None:
            # The backend's stream ended without its Finish: the reply was cut off, whatever
            # text came. Never a completed reply.
            self._flush()
            received = len(self.text) + sum(len(c.arguments) for c in self.calls.values())
            return self._fail(
                "server_error",
                f"the model's reply was cut off after {received} characters "
                "(its stream ended without finishing)",
            )
        total = used + finish.usage
        usage = {"prompt_tokens": total.prompt_tokens, "completion_tokens": total.completion_tokens}
        step_usage = {
            "prompt_tokens": finish.usage.prompt_tokens,
            "completion_tokens": finish.usage.completion_tokens,
        }
        if self.calls and tool_choice == "none":
            self._step_done("failed")
            self._flush()
            cap = config.max_model_calls
            if run.model_calls >= cap:
                why = f"the model kept calling tools after {cap} model calls (the step cap)"
            else:
                why = "the model called tools although the run's tool_choice is 'none'"
            return self._fail("server_error", why)
        if self.calls:
            return await self._after_calls(finish, usage, step_usage)
        return self._after_text(finish, usage, step_usage, run.max_completion_tokens is not None)

    async def _backend(self) -> ModelBackend:
        router = self.config.router
        if router is None:
            raise ModelError("the server has no model routes (ServerConfig.models is empty)")
        routes = router.routes
        kind = routes.get(self.run.model, routes.get("default"))
        if kind == "llama-cpp":  # the first resolve loads weights: keep the loop free
            return await asyncio.to_thread(router.resolve, self.run.model)
        return router.resolve(self.run.model)

    # -- streaming into steps and messages ---------------------------------------------------

    def _take(self, tx: Tx) -> list[EventEntry]:
        """Run the pending writes in ``tx``; return the pending events."""
        ops, self.ops = self.ops, []
        events, self.buffer = self.buffer, []
        for op in ops:
            op(tx)
        return events

    def _flush(self) -> None:
        """Commit pending writes and events in one transaction."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.buffer and not self.ops:
            return
        with self.writer.store.transaction() as tx:
            if tx.get_run(self.run.id) is None:
                self.ops, self.buffer = [], []  # deleted with its thread: write nothing
                return
            events = self._take(tx)
            tx.append_events(self.run.id, self.run.thread_id, events)
        self.writer.notify(self.run.id)

    def _new_step(self, kind: str, details: dict[str, Any]) -> StepRecord:
        step = StepRecord(
            id=new_id(),
            run_id=self.run.id,
            thread_id=self.run.thread_id,
            assistant_id=self.run.assistant_id,
            created_at=now_ms(),
            type=kind,
            status="in_progress",
            step_details=details,
        )

        def insert(tx: Tx) -> None:
            position = tx.thread_position(step.thread_id)
            tx.insert_step(dataclasses.replace(step, thread_position=position))

        self.ops.append(insert)
        snapshot = {"kind": "step", "record": record_data(step)}
        self.buffer += [
            ("thread.run.step.created", snapshot),
            ("thread.run.step.in_progress", snapshot),
        ]
        return step

    def _start_message(self) -> None:
        message = MessageRecord(
            id=new_id(),
            thread_id=self.run.thread_id,
            created_at=now_ms(),
            role="assistant",
            content=[],
            assistant_id=self.run.assistant_id,
            run_id=self.run.id,
            status="in_progress",
        )
        details = {"type": "message_creation", "message_creation": {"message_id": message.id}}
        step = self._new_step("message_creation", details)
        self.ops.append(lambda tx: tx.insert_message(message))
        snapshot = {"kind": "message", "record": record_data(message)}
        self.buffer += [
            ("thread.message.created", snapshot),
            ("thread.message.in_progress", snapshot),
        ]
        self.message, self.message_step = message, step

    def _text(self, text: str) -> None:
        if self.message is None:
            self._start_message()
        assert self.message is not None
        self.buffer.append(
            (
                "thread.message.delta",
                {
                    "kind": "message_delta",
                    "id": self.message.id,
                    "text": text,
                    "first": not self.text,
                },
            )
        )
        self.text += text

    def _tool_fragment(
        self,
        event: ToolCallDelta,
        builtins: Mapping[str, Enabled],
    ) -> None:
        if self.tool_step is None:
            if self.message is not None:
                self._complete_message(None, None)
            self.tool_step = self._new_step("tool_calls", {"type": "tool_calls", "tool_calls": []})
        call = self.calls.get(event.index)
        if call is None:
            taken = {c.id for c in self.calls.values()}
            call_id = event.id if event.id and event.id not in taken else new_call_id()
            name = event.name or ""
            call = self.calls[event.index] = _Call(call_id, name, builtin=builtins.get(name))
            kind = call.builtin.type if call.builtin else "function"
            self.buffer.append(
                (
                    "thread.run.step.delta",
                    {
                        "kind": "step_delta",
                        "id": self.tool_step.id,
                        "index": len(self.calls) - 1,
                        "call": {"id": call_id, "type": kind, "name": name, "arguments": ""},
                        "first": True,
                    },
                )
            )
        elif event.name and not call.name:
            call.name = event.name
        if event.arguments:
            call.arguments += event.arguments
            if call.builtin is None:
                self.buffer.append(
                    (
                        "thread.run.step.delta",
                        {
                            "kind": "step_delta",
                            "id": self.tool_step.id,
                            "index": list(self.calls).index(event.index),
                            "call": {"type": "function", "arguments": event.arguments},
                            "first": False,
                        },
                    )
                )

    def _complete_message(self, usage: dict[str, int] | None, incomplete: str | None) -> None:
        """Queue the completion of the reply message and its step."""
        assert self.message is not None and self.message_step is not None
        now = now_ms()
        annotations = annotate(self.text, self._searches()) if "【" in self.text else []
        content = [{"type": "text", "text": {"value": self.text, "annotations": annotations}}]
        if not incomplete:
            content += self._image_parts()
        changes: dict[str, Any] = {"content": content}
        if incomplete:
            changes.update(
                status="incomplete", incomplete_at=now, incomplete_details={"reason": incomplete}
            )
        else:
            changes.update(status="completed", completed_at=now)
        step_changes: dict[str, Any] = {"status": "completed", "completed_at": now, "usage": usage}
        message = dataclasses.replace(self.message, **changes)
        step = dataclasses.replace(self.message_step, **step_changes)

        def update(tx: Tx) -> None:
            tx.set_message(message.id, changes)
            tx.set_step(step.id, step_changes)

        self.ops.append(update)
        name = "thread.message.incomplete" if incomplete else "thread.message.completed"
        self.buffer += [
            (name, {"kind": "message", "record": record_data(message)}),
            ("thread.run.step.completed", {"kind": "step", "record": record_data(step)}),
        ]
        self.message = None
        self.text = ""  # text after this message (after tool calls) starts a message of its own

    def _searches(self) -> list[list[dict[str, Any]]]:
        """The results of the run's file_search calls so far, in order (citations name them)."""
        return [
            list(call.get("results") or ())
            for step in self.writer.store.steps(self.run.id)
            for call in step.step_details.get("tool_calls") or ()
            if call.get("type") == "file_search" and call.get("output") is not None
        ]

    def _image_parts(self) -> list[dict[str, Any]]:
        """The images the run's built-in tools made since its previous reply, as content parts
        after the text (so ``content[0].text.value`` stays the reply's text)."""
        files: list[str] = []
        urls: list[str] = []
        current = self.message_step.id if self.message_step is not None else None
        for step in self.writer.store.steps(self.run.id):
            if step.id == current:
                break
            if step.type == "message_creation":
                files, urls = [], []  # an earlier reply already showed those
            elif step.status == "completed":
                for call in step.step_details.get("tool_calls") or ():
                    files += [str(f) for f in call.get("images") or ()]
                    urls += [str(u) for u in call.get("urls") or ()]
        parts: list[dict[str, Any]] = [
            {"type": "image_file", "image_file": {"file_id": f}} for f in files
        ]
        parts += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
        return parts

    # -- endings -----------------------------------------------------------------------------

    def _end(self, status: str, changes: dict[str, Any]) -> bool:
        """Commit what is pending together with the run's move to ``status``; never loops."""
        self.writer.transition(
            self.run.id,
            status,
            when=("in_progress",),
            changes=changes,
            events=(f"thread.run.{status}",),
            before=self._take,
        ) or self._lost()
        return False

    def _after_text(
        self, finish: Finish, usage: dict[str, int], step_usage: dict[str, int], capped: bool
    ) -> bool:
        if self.message is None:
            self._start_message()
        truncated = finish.reason == "length"
        self._complete_message(step_usage, "max_tokens" if truncated else None)
        now = now_ms()
        if truncated:
            reason = "max_completion_tokens" if capped else "max_tokens"
            return self._end(
                "incomplete",
                {"usage": usage, "incomplete_at": now, "incomplete_details": {"reason": reason}},
            )
        return self._end("completed", {"usage": usage, "completed_at": now})

    async def _after_calls(
        self, finish: Finish, usage: dict[str, int], step_usage: dict[str, int]
    ) -> bool:
        assert self.tool_step is not None
        run = self.run
        if self.message is not None:  # text the model sent after its calls: a reply of its own
            self._complete_message(None, None)
            # The history shows the turn's text ahead of its calls, so the calls stay next to
            # their outputs and the model reads those last.
            step_id, thread_id = self.tool_step.id, run.thread_id
            self.ops.append(
                lambda tx: tx.set_step(step_id, {"thread_position": tx.thread_position(thread_id)})
            )
        entries: list[dict[str, Any]] = [
            {
                "id": call.id,
                "type": call.builtin.type if call.builtin else "function",
                "name": call.name,
                "arguments": call.arguments,
                "output": None,
            }
            for call in self.calls.values()
        ]
        pending: list[dict[str, Any]] = []
        for call, entry in zip(self.calls.values(), entries, strict=True):
            if call.builtin is not None:
                # Committed before the tool runs: after a crash, a call with ``started_at`` and
                # no output is reported to the model as interrupted, never run a second time.
                entry["started_at"] = now_ms()
                self._record_calls(entries)
                result = await call_builtin(
                    call.builtin,
                    call.name,
                    call.arguments,
                    thread_id=run.thread_id,
                    run_id=run.id,
                    save_file=self.config.save_file,
                )
                entry.update(
                    output=result.output,
                    logs=result.logs,
                    images=[image.id for image in result.images],
                    urls=list(result.urls),
                    is_error=result.is_error,
                )
                if result.results:
                    entry["results"] = [dict(r) for r in result.results]
                self._record_calls(entries)
            else:
                pending.append({"id": call.id, "name": call.name, "arguments": call.arguments})
        details = {"type": "tool_calls", "tool_calls": entries}
        step_changes: dict[str, Any] = {"step_details": details, "usage": step_usage}
        now = now_ms()
        if finish.reason == "length" or not pending:
            self._step_done("completed", step_changes)
        else:
            self._queue_step(step_changes)
        if finish.reason == "length":
            reason = "max_completion_tokens" if run.max_completion_tokens else "max_tokens"
            return self._end(
                "incomplete",
                {"usage": usage, "incomplete_at": now, "incomplete_details": {"reason": reason}},
            )
        if not pending:
            self.ops.append(lambda tx: tx.set_run(run.id, {"usage": usage}))
            self._flush()
            return True
        action = {"step_id": self.tool_step.id, "tool_calls": pending}
        return self._end("requires_action", {"usage": usage, "required_action": action})

    def _record_calls(self, entries: list[dict[str, Any]]) -> None:
        """Commit the tool step's calls as they stand (the stream already shows them)."""
        self._queue_step(
            {"step_details": {"type": "tool_calls", "tool_calls": copy.deepcopy(entries)}}
        )
        self._flush()

    def _queue_step(self, changes: dict[str, Any]) -> StepRecord:
        assert self.tool_step is not None
        step = self.tool_step = dataclasses.replace(self.tool_step, **changes)
        self.ops.append(lambda tx: tx.set_step(step.id, changes))
        return step

    def _step_done(self, status: str, changes: dict[str, Any] | None = None) -> None:
        stamp = "completed_at" if status == "completed" else "failed_at"
        step = self._queue_step({**(changes or {}), "status": status, stamp: now_ms()})
        self.buffer.append(
            (f"thread.run.step.{status}", {"kind": "step", "record": record_data(step)})
        )

    def _incomplete(self, reason: str, used: Usage) -> bool:
        usage = {"prompt_tokens": used.prompt_tokens, "completion_tokens": used.completion_tokens}
        return self._end(
            "incomplete",
            {"usage": usage, "incomplete_at": now_ms(), "incomplete_details": {"reason": reason}},
        )

    def _fail(self, code: str, message: str) -> bool:
        self.writer.finish(self.run.id, "failed", last_error={"code": code, "message": message})
        return False

    def _lost(self) -> bool:
        """A conditional update found the run moved on (cancel requested, expired)."""
        current = self.writer.store.get_run(self.run.id)
        if current is not None and current.status == "cancelling":
            self.writer.finish(self.run.id, "cancelled")
        return False
