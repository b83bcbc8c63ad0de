from __future__ import annotations

from pathlib import Path

import pytest

from assistant_kit.api.base import AssistantClient, AssistantParams
from assistant_kit.errors import ConfigError
from assistant_kit.spec.project import load_project
from assistant_kit.sync.apply import apply_plan
from assistant_kit.sync.importer import SCHEMA_HEADER, import_assistants
from assistant_kit.sync.plan import build_plan
from assistant_kit.sync.render import render_plan

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

INSTRUCTIONS = "You help {{ customers }} with orders.\n\n  Indented line.\nLast line."


async def made_elsewhere(client: AssistantClient) -> list[str]:
    """Assistants created without the kit, with everything a spec can say."""
    first = await client.create_assistant(
        AssistantParams(
            model="qwen-max",
            name="Order Desk",
            description="Answers order questions",
            instructions=INSTRUCTIONS,
            tools=[
                {"type": "search"},
                {
                    "type": "function",
                    "function": {
                        "name": "get_order",
                        "description": "Look up an order",
                        "parameters": {
                            "type": "object",
                            "properties": {"id": {"type": "integer"}},
                            "required": ["id"],
                        },
                    },
                },
                {"type": "code_interpreter"},
            ],
            metadata={"team": "support"},
            temperature=0.3,
            top_p=0.9,
        )
    )
    second = await client.create_assistant(
        AssistantParams(model="qwen-plus", name="Order Desk", instructions="Trailing.\n")
    )
    return [first.id, second.id]


async def test_import_round_trip_changes_nothing_but_the_marks(
    make_client: ClientFactory, dialect: str, tmp_path: Path
) -> None:
    client = make_client(dialect)
    ids = await made_elsewhere(client)
    folder = tmp_path / "assistants"
    imported = await import_assistants(client, folder, dialect=dialect)  # type: ignore[arg-type]
    assert [(i.id, i.name) for i in imported] == [(ids[0], "order-desk"), (ids[1], "order-desk-2")]
    text = (folder / "order-desk.yaml").read_text(encoding="utf-8")
    assert text.startswith(SCHEMA_HEADER)
    assert "instructions: |" in text
    assert "  - quark_search\n" in text and "  - code_interpreter\n" in text
    assert "{% raw %}" in text  # Jinja2 markers in the text stay text

    project = load_project(cwd=tmp_path)  # valid specs: no SpecError
    assert project.spec("order-desk").instructions == INSTRUCTIONS
    assert project.spec("order-desk-2").instructions == "Trailing.\n"
    plan = await build_plan(client, project.specs, target="local", dialect=dialect)  # type: ignore[arg-type]
    assert [(c.action, c.marks_only) for c in plan.changes] == [("update", True)] * 2
    assert [f.field for f in plan.changes[0].fields] == ["metadata.kit_digest"]
    assert "kit marks only" in render_plan(plan)
    assert (await apply_plan(client, plan)).ok
    after = await build_plan(client, project.specs, target="local", dialect=dialect)  # type: ignore[arg-type]
    assert not after.has_changes
    assert sorted(a.id for a in await client.list_all_assistants()) == sorted(ids)


@pytest.mark.parametrize(
    "instructions",
    [
        pytest.param("Write {{ name }} and {% if %} literally.", id="markers"),
        pytest.param("Explain {% raw %}{{ x }}{% endraw %} and {#- notes -#}.", id="endraw"),
        pytest.param("Odd braces: {{{ and {%- endraw -%} }}", id="endraw-trimmed"),
    ],
)
async def test_imported_instructions_with_jinja2_markers_render_back_exactly(
    make_client: ClientFactory, dialect: str, tmp_path: Path, instructions: str
) -> None:
    client = make_client(dialect)
    await client.create_assistant(
        AssistantParams(model="m", name="Quoter", instructions=instructions)
    )
    await import_assistants(client, tmp_path / "assistants", dialect=dialect)  # type: ignore[arg-type]
    assert load_project(cwd=tmp_path).spec("quoter").instructions == instructions


async def test_import_by_id_and_its_refusals(
    make_client: ClientFactory, dialect: str, tmp_path: Path
) -> None:
    client = make_client(dialect)
    ids = await made_elsewhere(client)
    folder = tmp_path / "specs"
    (one,) = await import_assistants(
        client, folder, dialect=dialect, ids=[ids[1]], taken={"order-desk"}
    )  # type: ignore[arg-type]
    assert one.name == "order-desk-2"
    assert [p.name for p in folder.iterdir()] == ["order-desk-2.yaml"]
    with pytest.raises(ConfigError, match="already managed as `order-desk-2`"):
        await import_assistants(client, folder, dialect=dialect, ids=[ids[1]])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no assistant asst_nope"):
        await import_assistants(client, folder, dialect=dialect, ids=["asst_nope"])  # type: ignore[arg-type]
    crowded = await client.create_assistant(
        AssistantParams(model="m", name="Crowded", metadata={f"k{i}": "v" for i in range(15)})
    )
    with pytest.raises(ConfigError, match="15 metadata pairs; a spec holds at most 13"):
        await import_assistants(client, folder, dialect=dialect, ids=[crowded.id])  # type: ignore[arg-type]
    assert not (folder / "crowded.yaml").exists()
    await client.delete_assistant(crowded.id)
    (folder / "order-desk.yaml").write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match="already exists"):
        await import_assistants(client, folder, dialect=dialect)  # type: ignore[arg-type]
    assert (folder / "order-desk.yaml").read_text(encoding="utf-8") == "keep me"


async def test_imported_plugins_name_an_env_var_and_never_hold_the_token(
    make_client: ClientFactory, dialect: str, tmp_path: Path
) -> None:
    client = make_client(dialect)
    await client.create_assistant(
        AssistantParams(
            model="m",
            name="Weather",
            tools=[{"type": "weather", "auth": {"type": "user_http", "user_token": "tok-999"}}],
        )
    )
    folder = tmp_path / "assistants"
    (item,) = await import_assistants(client, folder, dialect=dialect)  # type: ignore[arg-type]
    text = item.path.read_text(encoding="utf-8")
    assert "tok-999" not in text
    assert "env: WEATHER_TOKEN" in text
    assert any("WEATHER_TOKEN" in note for note in item.notes)
    project = load_project(cwd=tmp_path)
    plan = await build_plan(client, project.specs, target="l", dialect=dialect)  # type: ignore[arg-type]
    assert plan.changes[0].marks_only
    assert (await apply_plan(client, plan, environ={"WEATHER_TOKEN": "tok-999"})).ok
