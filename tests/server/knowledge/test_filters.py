"""Attribute filters: every comparison, nesting, missing keys, and the messages for bad ones."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_kit.server.knowledge.filters import check_filter, matches

ATTRS = {"year": 2024, "lang": "en", "draft": False, "score": 4.5}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "eq", "key": "lang", "value": "en"}, True),
        ({"type": "eq", "key": "lang", "value": "fr"}, False),
        ({"type": "ne", "key": "lang", "value": "fr"}, True),
        ({"type": "gt", "key": "year", "value": 2023}, True),
        ({"type": "gte", "key": "year", "value": 2024}, True),
        ({"type": "lt", "key": "score", "value": 4.5}, False),
        ({"type": "lte", "key": "score", "value": 4.5}, True),
        ({"type": "in", "key": "lang", "value": ["de", "en"]}, True),
        ({"type": "nin", "key": "lang", "value": ["de", "en"]}, False),
        ({"type": "eq", "key": "draft", "value": False}, True),
        ({"type": "eq", "key": "draft", "value": 0}, False),
        ({"type": "gt", "key": "lang", "value": 3}, False),
        ({"type": "eq", "key": "missing", "value": "x"}, False),
        ({"type": "ne", "key": "missing", "value": "x"}, True),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "gte", "key": "year", "value": 2020},
                    {
                        "type": "or",
                        "filters": [
                            {"type": "eq", "key": "lang", "value": "fr"},
                            {"type": "eq", "key": "draft", "value": False},
                        ],
                    },
                ],
            },
            True,
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "lt", "key": "year", "value": 2000},
                    {"type": "eq", "key": "lang", "value": "fr"},
                ],
            },
            False,
        ),
    ],
)
def test_matches(node: dict[str, Any], expected: bool) -> None:
    check_filter(node)
    assert matches(node, ATTRS) is expected


@pytest.mark.parametrize(
    ("node", "says"),
    [
        ([], "filters must be an object"),
        ({"type": "like", "key": "a", "value": 1}, "filters.type must be one of eq,"),
        ({"type": "eq", "value": 1}, "filters.key must be a string"),
        ({"type": "eq", "key": "a", "value": None}, "filters.value must be a string"),
        ({"type": "in", "key": "a", "value": "x"}, "filters.value must be an array"),
        ({"type": "and", "filters": []}, "filters.filters must be a non-empty array"),
        (
            {"type": "or", "filters": [{"type": "eq", "key": "a", "value": 1}, {"type": "x"}]},
            "filters.filters[1].type must be one of",
        ),
    ],
)
def test_bad_filters_say_where(node: Any, says: str) -> None:
    with pytest.raises(ValueError) as e:
        check_filter(node)
    assert says in str(e.value)
