"""A model call reads only the history it can use: bounded queries on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant_kit.server.ids import new_id
from assistant_kit.server.models.openai import FALLBACK_WINDOW, OpenAIChatBackend
from assistant_kit.server.models.scripted import ScriptedBackend
from assistant_kit.server.runs.history import HistoryCache, thread_history
from assistant_kit.server.runs.transcript import ThreadMessage, ToolStep, Truncation, build_prompt
from assistant_kit.server.store.records import (
    MESSAGES,
    THREADS,
    MessageRecord,
    StepRecord,
    ThreadRecord,
)
from assistant_kit.server.store.sqlite import SqliteStore

MESSAGES_IN_THREAD = 1000


class CountingStore(SqliteStore):
    """The real store, counting the message rows ``history`` hands out."""

    rows = 0

    def history(
        self, thread_id: str, newest: int | None = None, after: int = 0
    ) -> tuple[list[tuple[int, MessageRecord]], list[StepRecord]]:
        messages, steps = super().history(thread_id, newest, after)
        self.rows += len(messages)
        return messages, steps


def text(value: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": value, "annotations": []}}]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[CountingStore, str]]:
    """A thread of 1,000 messages (user / assistant turns), a tool step after every 10th."""
    s = CountingStore(tmp_path / "kit.db")
    s.open()
    thread = ThreadRecord(id=new_id(), created_at=1)
    with s.transaction() as tx:
        tx.insert(THREADS, thread)
        for n in range(MESSAGES_IN_THREAD):
            role = "user" if n % 2 == 0 else "assistant"
            tx.insert(
                MESSAGES,
                MessageRecord(
                    id=new_id(), thread_id=thread.id, created_at=n, role=role, content=text(f"m{n}")
                ),
            )
            if n % 10 == 0:
                call = {"id": f"call_{n}", "name": "lookup", "arguments": "{}", "output": f"o{n}"}
                tx.insert_step(
                    StepRecord(
                        id=new_id(),
                        run_id="r",
                        thread_id=thread.id,
                        assistant_id="a",
                        created_at=n,
                        type="tool_calls",
                        status="completed",
                        step_details={"tool_calls": [call]},
                        thread_position=tx.thread_position(thread.id),
                    )
                )
    yield s, thread.id
    s.close()


def contents(items: Sequence[object]) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, ThreadMessage):
            out.append(item.content)
        elif isinstance(item, ToolStep):
            out.append(f"step:{item.outputs[0]}")
    return out


def test_last_messages_loads_about_n_messages_and_keeps_what_the_whole_load_keeps(
    store: tuple[CountingStore, str],
) -> None:
    s, thread = store
    backend = ScriptedBackend()
    whole = thread_history(s, thread)
    assert s.rows == MESSAGES_IN_THREAD
    s.rows = 0
    part = thread_history(s, thread, messages=20)
    assert s.rows <= 40
    cut = Truncation("last_messages", 20)
    assert (
        build_prompt(backend, instructions="x", history=part, truncation=cut).messages
        == build_prompt(backend, instructions="x", history=whole, truncation=cut).messages
    )
    assert contents(part)[-3:] == ["m997", "m998", "m999"]


def test_auto_walks_back_until_the_budget_is_spent(store: tuple[CountingStore, str]) -> None:
    s, thread = store
    backend = ScriptedBackend(context_window=2048)
    whole = thread_history(s, thread)
    s.rows = 0
    part = thread_history(s, thread, tokens=1024, count=backend.count_tokens)
    assert 0 < s.rows < MESSAGES_IN_THREAD / 2  # a window of a few hundred, not the thread
    prompt = build_prompt(backend, instructions="x", history=part)
    assert prompt.messages == build_prompt(backend, instructions="x", history=whole).messages
    assert prompt.tokens <= 2048


def test_a_thread_that_fits_is_loaded_whole(store: tuple[CountingStore, str]) -> None:
    s, thread = store
    assert thread_history(s, thread, messages=5000) == thread_history(s, thread)
    big = thread_history(s, thread, tokens=10**6, count=ScriptedBackend().count_tokens)
    assert big == thread_history(s, thread)


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4o-mini", 128_000),
        ("gpt-4.1-nano", 1_047_576),
        ("gpt-4", 8_192),
        ("qwen-plus-latest", 131_072),
        ("meta/llama3.1:8b", 131_072),
        ("something-else", FALLBACK_WINDOW),
    ],
)
def test_the_context_window_follows_the_model_family_unless_kit_yaml_sets_it(
    model: str, window: int
) -> None:
    assert OpenAIChatBackend("http://127.0.0.1:1/v1").context_window(model) == window
    configured = OpenAIChatBackend("http://127.0.0.1:1/v1", context_window=4096)
    assert configured.context_window(model) == 4096
    routed = OpenAIChatBackend("http://127.0.0.1:1/v1", model="gpt-4o")
    assert routed.context_window(model) == 128_000


def test_the_next_call_of_a_run_reads_only_what_was_written_since(
    store: tuple[CountingStore, str],
) -> None:
    s, thread = store
    cache = HistoryCache()
    first = thread_history(s, thread, messages=20, cache=cache)
    assert first == thread_history(s, thread, messages=20)
    with s.transaction() as tx:  # the call's reply, then a tool step after it
        reply = MessageRecord(
            id=new_id(), thread_id=thread, created_at=2000, role="assistant", content=text("r")
        )
        tx.insert(MESSAGES, reply)
        call = {"id": "call_r", "name": "lookup", "arguments": "{}", "output": "out"}
        tx.insert_step(
            StepRecord(
                id=new_id(),
                run_id="r",
                thread_id=thread,
                assistant_id="a",
                created_at=2000,
                type="tool_calls",
                status="completed",
                step_details={"tool_calls": [call]},
                thread_position=tx.thread_position(thread),
            )
        )
    s.rows = 0
    second = thread_history(s, thread, messages=20, cache=cache)
    assert s.rows == 1  # the new reply only
    cut = Truncation("last_messages", 20)
    backend = ScriptedBackend()
    uncached = thread_history(s, thread, messages=20)
    assert (
        build_prompt(backend, instructions="x", history=second, truncation=cut).messages
        == build_prompt(backend, instructions="x", history=uncached, truncation=cut).messages
    )
    assert contents(second)[-2:] == ["r", "step:out"]
