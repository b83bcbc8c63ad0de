"""A thread's history as the transcript builder wants it: messages and tool steps, in order.

Messages come in insertion order (``seq``); each tool step records the ``seq`` of the thread's
newest message when it was made (``thread_position``) and goes right after that message, so a
run's tool calls sit between the user message that prompted them and the reply that used them.
Only completed steps count (a step waiting for outputs, or cut off, has nothing to show), and
only completed assistant messages (not partial ones from a cancelled or crashed call).
"""

from __future__ import annotations

from assistant_kit.server.models.base import ToolCall
from assistant_kit.server.runs.transcript import HistoryItem, ThreadMessage, ToolStep
from assistant_kit.server.services import message_text
from assistant_kit.server.store.base import Store
from assistant_kit.server.store.records import StepRecord


def thread_history(store: Store, thread_id: str) -> list[HistoryItem]:
    """The thread's messages and completed tool steps, oldest first."""
    messages, steps = store.history(thread_id)
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
