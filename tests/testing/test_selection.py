"""-k expressions, --tag filters and --shard i/n."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant_kit.testing.selection import (
    SelectionError,
    Shard,
    compile_keyword,
    parse_shard,
    select,
    shard_ids,
)


@dataclass(frozen=True)
class Case:
    id: str
    tags: tuple[str, ...] = ()


SUITE = [
    Case("billing-bot::refunds a charge", ("smoke", "billing")),
    Case("billing-bot::looks up an order", ("billing",)),
    Case("art-maestro::looks up an artwork", ("smoke",)),
    Case("art-maestro::draws a cat", ("slow",)),
    Case("art-maestro::doesn't draw faces", ()),
]


def chosen(**kw) -> list[str]:
    return [c.id for c in select(SUITE, id_of=lambda c: c.id, tags_of=lambda c: c.tags, **kw)]


@pytest.mark.parametrize(
    ("expr", "ids"),
    [
        pytest.param(None, [c.id for c in SUITE], id="none"),
        pytest.param("doesn't", [SUITE[4].id], id="apostrophe-inside-a-word"),
        pytest.param("", [c.id for c in SUITE], id="empty"),
        pytest.param("billing", [SUITE[0].id, SUITE[1].id], id="substring-and-tag"),
        pytest.param("ORDER", [SUITE[1].id], id="case-insensitive"),
        pytest.param("looks up", [SUITE[1].id, SUITE[2].id], id="phrase"),
        pytest.param("looks and not art", [SUITE[1].id], id="and-not"),
        pytest.param("draw and not cat", [SUITE[4].id], id="and-not-2"),
        pytest.param("cat or refunds", [SUITE[0].id, SUITE[3].id], id="or"),
        pytest.param("smoke and (art or refunds)", [SUITE[0].id, SUITE[2].id], id="parens"),
        pytest.param("not not slow", [SUITE[3].id], id="double-not"),
        pytest.param("'maestro::draws'", [SUITE[3].id], id="quoted"),
        pytest.param("art-maestro::looks up an artwork", [SUITE[2].id], id="full-id"),
    ],
)
def test_keyword(expr, ids):
    assert chosen(keyword=expr) == ids


@pytest.mark.parametrize("expr", ["and", "a and", "(a", "a )", "not", "a or or b", "'open"])
def test_bad_keyword_is_a_selection_error(expr):
    with pytest.raises(SelectionError, match="-k"):
        compile_keyword(expr)


def test_tags_select_any_of_them_and_combine_with_keyword():
    assert chosen(tags=["slow", "SMOKE"]) == [SUITE[0].id, SUITE[2].id, SUITE[3].id]
    assert chosen(tags=["smoke"], keyword="art") == [SUITE[2].id]
    assert chosen(tags=["nope"]) == []


@pytest.mark.parametrize(
    ("text", "shard"),
    [("1/1", Shard(1, 1)), ("2/4", Shard(2, 4)), (" 3 / 3 ", Shard(3, 3))],
)
def test_parse_shard(text, shard):
    assert parse_shard(text) == shard
    assert str(shard) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "1", "a/b", "-1/2", ""])
def test_bad_shard(text):
    with pytest.raises(SelectionError, match="--shard"):
        parse_shard(text)


# no per-example deadline: on a loaded 2-core CI machine an example can take longer than
# Hypothesis' 200 ms, which it reports as a flaky failure; derandomized so a red run reproduces
@settings(deadline=None, derandomize=True, database=None)
@given(
    ids=st.lists(st.text(min_size=1, max_size=12), max_size=60, unique=True),
    count=st.integers(min_value=1, max_value=9),
)
def test_shards_partition_exactly(ids, count):
    parts = [shard_ids(ids, Shard(i, count)) for i in range(1, count + 1)]
    assert sorted(x for part in parts for x in part) == sorted(ids)  # every id, exactly once
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_shard_does_not_depend_on_input_order():
    ids = [c.id for c in SUITE]
    assert shard_ids(ids, Shard(1, 2)) == shard_ids(list(reversed(ids)), Shard(1, 2))


def test_select_shards_after_filtering_and_keeps_order():
    all_parts = [chosen(shard=Shard(i, 3)) for i in (1, 2, 3)]
    flat = [x for part in all_parts for x in part]
    assert sorted(flat) == sorted(c.id for c in SUITE)
    for part in all_parts:
        assert part == [c.id for c in SUITE if c.id in part]
    smoke = [chosen(tags=["smoke"], shard=Shard(i, 2)) for i in (1, 2)]
    assert sorted(smoke[0] + smoke[1]) == sorted(chosen(tags=["smoke"]))
    assert all(len(p) == 1 for p in smoke)
