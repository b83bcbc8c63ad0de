"""A thread's history as the transcript builder wants it: messages and tool steps, in order.

Messages come in insertion order (``seq``); each tool step records the ``seq`` of the thread's
newest message when it was made (``thread_position``) and goes right after that message, so a
run's tool calls sit between the user message that prompted them and the reply that used them.
Only completed steps count (a step waiting for outputs, or cut off, has nothing to show), and
only completed assistant messages (not partial ones from a cancelled or crashed call).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from assistant_kit.server.models.base import ChatMessage, ToolCall
from assistant_kit.server.runs.transcript import HistoryItem, ThreadMessage, ToolStep, render_item
from assistant_kit.server.services import message_text
from assistant_kit.server.store.base import Store
from assistant_kit.server.store.records import MessageRecord, StepRecord

#: Messages ``auto`` loads first; it doubles the window until the budget is spent.
FIRST_WINDOW = 64


@dataclass(slots=True)
class HistoryCache:
    """One run's decoded history between its model calls: the first call loads what it needs,
    each later call reads only the messages written since and the tool steps after them (the
    run's own replies and tool calls; a thread takes no other writes while its run is active)."""

    rows: list[tuple[int, MessageRecord]] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    loaded: bool = False


def thread_history(
    store: Store,
    thread_id: str,
    *,
    messages: int | None = None,
    tokens: int | None = None,
    count: Callable[[Sequence[ChatMessage]], int] | None = None,
    cache: HistoryCache | None = None,
) -> list[HistoryItem]:
    """The thread's messages and completed tool steps, oldest first: all of them, or only as
    much of the newest end as the model call can use.

    With ``messages`` (``last_messages N``) at least the N newest thread messages are loaded;
    with ``tokens`` and ``count`` (``auto``) the newest history is loaded until it holds more
    than ``tokens`` (then truncation cuts it to fit). Both walk back from the newest message in
    bounded queries whose size doubles, so the cost follows what is kept, not the thread's
    length; a thread that fits is loaded whole. With a ``cache`` that holds an earlier load of
    the same thread, only what was written since is read and decoded.
    """
    if cache is not None and cache.loaded:
        last = cache.rows[-1][0] if cache.rows else 0
        rows, steps = store.history(thread_id, after=last)
        cache.rows += rows
        cache.steps = [s for s in cache.steps if s.thread_position < last] + steps
        return _items(cache.rows, cache.steps)
    rows, steps = _load(store, thread_id, messages, tokens, count)
    if cache is not None:
        cache.rows, cache.steps, cache.loaded = rows, steps, True
    return _items(rows, steps)


def _load(
    store: Store,
    thread_id: str,
    messages: int | None,
    tokens: int | None,
    count: Callable[[Sequence[ChatMessage]], int] | None,
) -> tuple[list[tuple[int, MessageRecord]], list[StepRecord]]:
    if messages is None and (tokens is None or count is None):
        return store.history(thread_id)
    window = max(1, messages or 0) + 8 if messages is not None else FIRST_WINDOW
    costs: dict[HistoryItem, int] = {}  # tokens per item, counted once across the rounds
    while True:
        rows, steps = store.history(thread_id, newest=window)
        if len(rows) < window:  # the whole thread
            return rows, steps
        items = _items(rows, steps)
        if messages is not None:
            if sum(isinstance(i, ThreadMessage) for i in items) >= messages:
                return rows, steps
        elif count is not None and tokens is not None and _over(items, tokens, count, costs):
            return rows, steps
        window *= 2


def _over(
    items: Sequence[HistoryItem],
    tokens: int,
    count: Callable[[Sequence[ChatMessage]], int],
    costs: dict[HistoryItem, int],
) -> bool:
    """Whether ``items`` take more than ``tokens``, counted newest first up to the budget."""
    total = 0
    for position in range(len(items) - 1, -1, -1):
        item = items[position]
        cost = costs.get(item)
        if cost is None:
            cost = costs[item] = count(render_item(item, position))
        total += cost
        if total > tokens:
            return True
    return False


def _items(
    messages: Sequence[tuple[int, MessageRecord]], steps: Sequence[StepRecord]
) -> list[HistoryItem]:
    by_position: dict[int, list[StepRecord]] = {}
    for step in steps:
        if step.status == "completed":
            by_position.setdefault(step.thread_position, []).append(step)
    items: list[HistoryItem] = [tool_step(s) for s in by_position.get(0, [])]
    for seq, message in messages:
        if message.role == "user":
            items.append(ThreadMessage("user", message_text(message)))
        elif message.status == "completed":
            text = message_text(message)
            if text:
                items.append(ThreadMessage("assistant", text))
        items.extend(tool_step(s) for s in by_position.get(seq, []))
    return items


def tool_step(step: StepRecord) -> ToolStep:
    """A stored ``tool_calls`` step as the transcript's ``ToolStep`` (calls and outputs)."""
    calls = step.step_details.get("tool_calls") or []
    return ToolStep(
        calls=tuple(
            ToolCall(
                str(c.get("id") or ""), str(c.get("name") or ""), str(c.get("arguments") or "")
            )
            for c in calls
        ),
        outputs=tuple(c.get("output") for c in calls),
    )
