"""Argument matchers: literals, subsets, exact keys, lists, regex and schema operators."""

from __future__ import annotations

import pytest

from assistant_kit.testing.matchers import MatcherError, check_expected, match_args, match_value

ARGS = {
    "city": "Paris",
    "days": 3,
    "ratio": 0.5,
    "metric": True,
    "tags": ["a", "b"],
    "where": {"lat": 48.8, "lon": 2.3, "label": "centre"},
    "note": None,
}


@pytest.mark.parametrize(
    "expected",
    [
        pytest.param({}, id="empty"),
        pytest.param({"city": "Paris"}, id="literal"),
        pytest.param({"days": 3.0}, id="int-equals-float"),
        pytest.param({"note": None}, id="null"),
        pytest.param({"tags": ["a", "b"]}, id="list"),
        pytest.param({"tags": [{"regex": "^a$"}, "b"]}, id="list-with-operator"),
        pytest.param({"where": {"lat": 48.8}}, id="nested-subset"),
        pytest.param({"days": {"regex": "^3$"}}, id="regex-on-number"),
        pytest.param({"where": {"regex": '"lat": 48'}}, id="regex-on-object-json"),
        pytest.param({"days": {"schema": {"type": "integer", "maximum": 5}}}, id="schema"),
        pytest.param({"metric": True}, id="bool"),
    ],
)
def test_matches(expected):
    assert match_args(expected, ARGS) is None


@pytest.mark.parametrize(
    ("expected", "problem"),
    [
        pytest.param({"city": "Lyon"}, "city: expected 'Lyon', got 'Paris'", id="literal"),
        pytest.param(
            {"zip": "75001"}, "zip: expected '75001', but the key is missing", id="missing"
        ),
        pytest.param({"metric": 1}, "metric: expected 1, got true", id="bool-is-not-int"),
        pytest.param({"days": True}, "days: expected true, got 3", id="int-is-not-bool"),
        pytest.param({"days": "3"}, "days: expected '3', got 3", id="text-is-not-int"),
        pytest.param({"tags": ["a"]}, 'tags: expected ["a"], got ["a", "b"]', id="list-length"),
        pytest.param({"tags": ["a", "c"]}, "tags[1]: expected 'c', got 'b'", id="list-item"),
        pytest.param(
            {"city": {"lat": 1}}, "city: expected an object, got 'Paris'", id="not-object"
        ),
        pytest.param({"where": {"lon": 9}}, "where.lon: expected 9, got 2.3", id="nested"),
        pytest.param(
            {"days": {"schema": {"maximum": 2}}}, "days: schema: (root): 3 is greater", id="schema"
        ),
        pytest.param({"city": {"regex": "^L"}}, "city: expected a match for /^L/", id="regex"),
    ],
)
def test_mismatches_name_the_path(expected, problem):
    assert problem in match_args(expected, ARGS)


def test_exact_rejects_extra_keys_at_every_level():
    assert match_args({"a": 1}, {"a": 1}, exact=True) is None
    assert match_args({"a": 1}, {"a": 1, "b": 2}, exact=True) == "(root): unexpected keys b"
    nested = match_args({"a": {"x": 1}}, {"a": {"x": 1, "y": 2}}, exact=True)
    assert nested == "a: unexpected keys y"


def test_non_object_arguments():
    assert match_args({"a": 1}, ["a"]) == '(root): expected an object, got ["a"]'
    assert match_value([1, 2], [1, 2]) is None


@pytest.mark.parametrize(
    ("expected", "fragment"),
    [
        pytest.param({"a": {"regex": 5}}, "args.a: regex must be a string", id="regex-type"),
        pytest.param({"a": [{"regex": "("}]}, "args.a[0]: bad regex", id="regex-in-list"),
        pytest.param({"a": {"schema": "string"}}, "schema must be a mapping", id="schema-type"),
        pytest.param({"a": {"schema": {"type": "nope"}}}, "invalid JSON Schema", id="schema-bad"),
    ],
)
def test_check_expected_rejects_bad_operators(expected, fragment):
    with pytest.raises(MatcherError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        check_expected(expected)


def test_a_mapping_with_more_keys_is_a_literal_not_an_operator():
    # {regex: ..., other: ...} is an ordinary nested object to match
    assert (
        match_args({"q": {"regex": "x", "flags": "i"}}, {"q": {"regex": "x", "flags": "i"}}) is None
    )
