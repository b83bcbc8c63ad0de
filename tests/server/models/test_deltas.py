from __future__ import annotations

import json
from typing import Any

import pytest

from assistant_kit.errors import ModelError
from assistant_kit.server.models.base import ToolCallDelta
from assistant_kit.server.models.deltas import ToolCallAccumulator


def feed_all(fragments: list[dict[str, Any]]) -> tuple[ToolCallAccumulator, list[ToolCallDelta]]:
    acc = ToolCallAccumulator()
    events = [e for f in fragments for e in acc.feed(f)]
    events += acc.close()
    return acc, events


def test_interleaved_parallel_fragments_stay_with_their_call() -> None:
    acc, events = feed_all(
        [
            {"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}},
            {"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}},
            {"index": 0, "function": {"arguments": '{"x": '}},
            {"index": 1, "function": {"arguments": '{"y": 2}'}},
            {"index": 0, "function": {"arguments": "1}"}},
        ]
    )
    assert [(c.id, c.name, json.loads(c.arguments)) for c in acc.calls] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {"y": 2}),
    ]
    assert events[0] == ToolCallDelta(0, "", name="f", id="a")
    assert events[1] == ToolCallDelta(1, "", name="g", id="b")
    assert all(e.name is None and e.id is None for e in events[2:])


def test_a_call_is_held_until_its_id_arrives() -> None:
    acc = ToolCallAccumulator()
    assert acc.feed({"index": 0, "function": {"name": "f", "arguments": '{"a"'}}) == []
    assert acc.feed({"index": 0, "id": "late", "function": {"arguments": ": 1}"}}) == [
        ToolCallDelta(0, '{"a": 1}', name="f", id="late")
    ]


def test_a_call_whose_id_never_comes_gets_one_on_close() -> None:
    acc, events = feed_all([{"function": {"name": "f", "arguments": "{}"}}])
    assert events[0].id and events[0].id.startswith("call_")
    assert acc.calls[0].arguments == "{}"


def test_a_call_without_a_name_is_a_model_error() -> None:
    acc = ToolCallAccumulator()
    acc.feed({"index": 0, "id": "a", "function": {"arguments": '{"x": 1}'}})
    with pytest.raises(ModelError, match="without a function name"):
        acc.close()


def test_duplicate_upstream_ids_are_made_distinct() -> None:
    acc, _ = feed_all(
        [
            {"index": 0, "id": "same", "function": {"name": "f", "arguments": "{}"}},
            {"index": 1, "id": "same", "function": {"name": "f", "arguments": "{}"}},
        ]
    )
    ids = [c.id for c in acc.calls]
    assert ids[0] == "same" and ids[1] != "same" and len(set(ids)) == 2
