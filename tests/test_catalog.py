"""The kit's facts (assistant_kit.catalog) agree with every place that repeats them: the JSON
Schemas editors read, the server's built-in tools, and what sync compares and shows."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_kit import catalog
from assistant_kit.server.tools.registry import build_tools
from assistant_kit.spec.model import DIALECTS, AssistantSpec
from assistant_kit.spec.validate import load_schema
from assistant_kit.sync.diff import FIELDS


def defs(name: str) -> dict[str, Any]:
    return dict(load_schema(name)["$defs"])


def test_the_marks_are_the_metadata_keys_a_spec_may_not_use() -> None:
    metadata = load_schema("assistant")["properties"]["metadata"]
    assert metadata["propertyNames"]["not"]["enum"] == list(catalog.MARKS)
    assert metadata["maxProperties"] == catalog.MAX_METADATA - len(catalog.MARKS)


def test_the_schema_tool_enums_are_the_catalog() -> None:
    schema = defs("assistant")
    names = list(catalog.tool_names())
    assert schema["tool_shorthand"]["enum"] == names
    types = schema["tool_object"]["properties"]["type"]["enum"]
    assert types == ["function", *names, "plugin"]
    builtin_branch = next(
        rule["if"]["properties"]["type"]["enum"]
        for rule in schema["tool_object"]["allOf"]
        if "enum" in rule["if"]["properties"]["type"]
    )
    assert builtin_branch == names


def test_the_server_tool_options_name_the_catalog_tools() -> None:
    server_tools = defs("kit")["server_tools"]["properties"]
    assert sorted(server_tools) == sorted(catalog.tool_names(aliases=False))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_server_runs_every_catalog_tool_under_its_names() -> None:
    tools = build_tools({})
    served = {tool.type: tuple(tool.aliases) for tool in tools}
    assert served == {t.type: t.aliases for t in catalog.BUILTIN_TOOLS}
    for alias, kind in catalog.TOOL_ALIASES.items():
        found = tools.resolve({"type": alias})
        assert found is not None and found.type == kind
    await tools.aclose()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_payload_carries_exactly_the_settings_its_dialect_takes(dialect: str) -> None:
    settings = {"temperature": 0.5, "top_p": 0.5, "top_k": 5, "max_tokens": 100}
    spec = AssistantSpec.from_data({"name": "a", "model": "m", "settings": settings})
    body = spec.to_payload(dialect)  # type: ignore[arg-type]
    assert [k for k in body if k in settings] == list(catalog.SETTINGS[dialect])
    assert set(catalog.SETTINGS[dialect]) <= set(FIELDS)
    assert set(catalog.DEFAULTS[dialect]) <= set(catalog.SETTINGS[dialect])


def test_an_alias_resolves_to_its_tool_and_anything_else_is_left_alone() -> None:
    assert catalog.canonical_tool("search") == "quark_search"
    assert catalog.canonical_tool("wanx") == "text_to_image"
    assert catalog.canonical_tool("weather") == "weather"
    assert catalog.aliases_of("quark_search") == ("search",)
    assert catalog.aliases_of("function") == ()
