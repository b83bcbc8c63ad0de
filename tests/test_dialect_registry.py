"""Each wire dialect is one entry on the client side: its facts in ``catalog.WIRE_DIALECTS``, its
client in ``api.registry.CLIENTS``; no other client-side module asks which dialect it holds."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

import assistant_kit
from assistant_kit.api.registry import CLIENTS, client_for
from assistant_kit.catalog import DIALECTS, WIRE_DIALECTS
from assistant_kit.errors import ConfigError
from assistant_kit.server.app import MOUNTS
from assistant_kit.spec.project import Target
from assistant_kit.spec.validate import load_schema

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


ROOT = Path(assistant_kit.__file__).parent
#: The two homes of the dialect names on the client side.
HOMES = {"catalog.py", "api/registry.py"}
#: Names whose comparisons with "openai"/"dashscope" mean another concept than a wire dialect:
#: a model backend ``kind: openai`` (kit.yaml ``server.models`` routes an OpenAI-compatible model
#: endpoint; it says nothing of the wire a client speaks). None is compared on the client side
#: today; the server, which has such kinds, is checked by tests/server/dialects.
OTHER_CONCEPTS = {"kind", "backend"}


def dialect_comparisons(source: str) -> list[int]:
    """Lines of ``source`` comparing something with a dialect name (``x == "openai"``,
    ``x in ("dashscope", ...)``), comparisons with a model backend kind aside."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        parts = list(ast.walk(node))
        constants = {n.value for n in parts if isinstance(n, ast.Constant)}
        words = {n.id for n in parts if isinstance(n, ast.Name)}
        words |= {n.attr for n in parts if isinstance(n, ast.Attribute)}
        if constants & set(DIALECTS) and not any(
            concept in word.lower() for word in words for concept in OTHER_CONCEPTS
        ):
            found.append(node.lineno)
    return sorted(found)


def test_the_detector_finds_a_branch_on_a_dialect_name() -> None:
    source = (
        'if dialect == "openai":\n    pass\n'
        'x = 1 if target.provider != "dashscope" else 2\n'
        'ok = dialect in ("dashscope", "x")\n'
        'kind_ok = backend.kind == "openai"\n'
        'local = target.provider == "local"\n'
    )
    assert dialect_comparisons(source) == [1, 3, 4]


def test_no_client_module_outside_the_catalog_and_registry_asks_which_dialect_it_holds() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] == "server" or relative.as_posix() in HOMES:
            continue
        for line in dialect_comparisons(path.read_text(encoding="utf-8")):
            found.append(f"{relative}:{line}")
    assert found == []


def test_every_dialect_in_the_catalog_has_a_client_speaking_it() -> None:
    assert list(CLIENTS) == list(DIALECTS) == list(WIRE_DIALECTS)
    for name, cls in CLIENTS.items():
        assert cls.dialect == WIRE_DIALECTS[name].name == name


def test_the_server_mounts_each_dialect_where_the_catalog_says_clients_find_it() -> None:
    # a dialect may be mounted at more paths (the Responses routes under compatible-mode/v1)
    mounted = {(mount.dialect.name, mount.path) for mount in MOUNTS}
    assert {(name, wire.base_path) for name, wire in WIRE_DIALECTS.items()} <= mounted


def test_the_schema_dialect_enum_is_the_catalog() -> None:
    target = load_schema("kit")["$defs"]["target"]["properties"]
    assert target["dialect"]["enum"] == list(DIALECTS)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_client_for_builds_the_registered_client(dialect: str) -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
        assert type(client_for(dialect, http)) is CLIENTS[dialect]


async def test_an_unknown_dialect_is_named_with_the_known_ones() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as http:
        with pytest.raises(ValueError, match=r"'responses'.*dashscope, openai"):
            client_for("responses", http)


def test_a_target_with_an_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="target `x`: unknown dialect 'responses'"):
        Target(name="x", provider="local", dialect="responses")
