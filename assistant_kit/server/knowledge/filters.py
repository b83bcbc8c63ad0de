"""Attribute filters of vector store search and ``file_search``: comparison and compound.

A comparison is ``{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key": ..., "value": ...}``
on a file's ``attributes`` (strings, numbers, booleans); a compound is
``{"type": "and"|"or", "filters": [...]}`` of either kind, nested freely::

    check_filter(body["filters"])                      # ValueError naming the bad part
    matches(body["filters"], {"year": 2024})           # bool

A file without the key matches only ``ne`` and ``nin``; ordering comparisons between a number
and a string never match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
_SCALAR = (str, int, float, bool)


def check_filter(node: Any, where: str = "filters") -> None:
    """Raise ``ValueError`` (saying where) unless ``node`` is a well-formed filter."""
    if not isinstance(node, Mapping):
        raise ValueError(f"{where} must be an object")
    kind = node.get("type")
    if kind in COMPOUNDS:
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise ValueError(f"{where}.filters must be a non-empty array")
        for i, child in enumerate(children):
            check_filter(child, f"{where}.filters[{i}]")
        return
    if kind not in COMPARISONS:
        raise ValueError(
            f"{where}.type must be one of {', '.join(COMPARISONS + COMPOUNDS)}, not {kind!r}"
        )
    if not isinstance(node.get("key"), str):
        raise ValueError(f"{where}.key must be a string")
    value = node.get("value")
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not all(isinstance(v, _SCALAR) for v in value):
            raise ValueError(f"{where}.value must be an array of strings, numbers or booleans")
    elif not isinstance(value, _SCALAR):
        raise ValueError(f"{where}.value must be a string, number or boolean")


def matches(node: Mapping[str, Any], attributes: Mapping[str, Any]) -> bool:
    """Whether a file with ``attributes`` passes the (checked) filter."""
    kind = node["type"]
    if kind == "and":
        return all(matches(child, attributes) for child in node["filters"])
    if kind == "or":
        return any(matches(child, attributes) for child in node["filters"])
    key, value = node["key"], node["value"]
    if key not in attributes:
        return kind in ("ne", "nin")
    have = attributes[key]
    if kind == "eq":
        return bool(_same(have, value))
    if kind == "ne":
        return not _same(have, value)
    if kind == "in":
        return any(_same(have, v) for v in value)
    if kind == "nin":
        return not any(_same(have, v) for v in value)
    if _numeric(have) != _numeric(value):
        return False
    try:
        if kind == "gt":
            return bool(have > value)
        if kind == "gte":
            return bool(have >= value)
        if kind == "lt":
            return bool(have < value)
        return bool(have <= value)
    except TypeError:
        return False


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; an attribute's boolean is not the number 1
    return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)
