from __future__ import annotations

import json

import pytest

from assistant_kit.api.base import AssistantParams
from assistant_kit.errors import ConfigError, PlanError
from assistant_kit.sync.apply import apply_plan
from assistant_kit.sync.plan import build_plan
from assistant_kit.sync.render import plan_json, render_plan
from assistant_kit.sync.retry import RetryPolicy

from .conftest import ClientFactory
from .faults import FaultyTransport
from .specs import WEATHER_TOOL, make_spec

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(base_delay=0.001)


def specs_v1() -> list:
    return [
        make_spec("alpha", instructions="Line one.\nLine two.", tools=["code_interpreter"]),
        make_spec("beta", display_name="Beta Bot", tools=[WEATHER_TOOL], metadata={"team": "b"}),
    ]


async def test_plan_classifies_create_update_and_noop(
    make_client: ClientFactory, dialect: str
) -> None:
    client = make_client(dialect)
    first = await build_plan(client, specs_v1(), target="local", dialect=dialect)
    assert [(c.action, c.name) for c in first.changes] == [("create", "alpha"), ("create", "beta")]
    assert (await apply_plan(client, first, retry=FAST)).ok

    edited = [
        make_spec("alpha", instructions="Line one.\nLine 2.", tools=["code_interpreter"]),
        specs_v1()[1],
        make_spec("gamma"),
    ]
    second = await build_plan(client, edited, target="local", dialect=dialect)
    assert [(c.action, c.name) for c in second.changes] == [
        ("update", "alpha"),
        ("noop", "beta"),
        ("create", "gamma"),
    ]
    alpha = second.changes[0]
    assert [f.field for f in alpha.fields] == ["instructions", "metadata.kit_digest"]
    assert not alpha.drifted and alpha.spec_changed
    text = render_plan(second)
    assert '  ~ assistant "alpha"' in text
    assert '  + assistant "gamma"' in text
    assert "Plan: 1 to create, 1 to update, 0 to delete." in text
    assert "beta" not in text


async def test_plan_changes_nothing_and_lists_with_the_largest_pages(
    make_client: ClientFactory, asgi: object, dialect: str
) -> None:
    seed = make_client(dialect)
    for i in range(130):
        await seed.create_assistant(AssistantParams(model="m", name=f"outside-{i}"))
    transport = FaultyTransport(asgi)  # type: ignore[arg-type]
    client = make_client(dialect, transport)
    plan = await build_plan(client, specs_v1(), target="local", dialect=dialect)
    assert plan.list_calls == 2 and len(plan.unmanaged) == 130
    assert dict(transport.counts) == {
        f"GET {'/api/v1' if dialect == 'dashscope' else '/v1'}/assistants": 2
    }
    assert "130 unmanaged assistants on the target left alone" in render_plan(plan)


async def test_unmanaged_assistants_are_never_touched_even_with_prune(
    make_client: ClientFactory, dialect: str
) -> None:
    client = make_client(dialect)
    stranger = await client.create_assistant(AssistantParams(model="m", name="alpha"))
    await apply_plan(client, await build_plan(client, specs_v1(), target="l", dialect=dialect))
    plan = await build_plan(client, [], target="l", dialect=dialect, prune=True)
    assert {(c.action, c.name) for c in plan.changes} == {("delete", "alpha"), ("delete", "beta")}
    assert stranger.id not in {c.remote_id for c in plan.changes}
    assert (await apply_plan(client, plan)).ok
    left = await client.list_all_assistants()
    assert [a.id for a in left] == [stranger.id]


async def test_managed_assistants_without_spec_stay_unless_prune(
    make_client: ClientFactory, dialect: str
) -> None:
    client = make_client(dialect)
    await apply_plan(client, await build_plan(client, specs_v1(), target="l", dialect=dialect))
    plan = await build_plan(client, specs_v1()[:1], target="l", dialect=dialect)
    assert not plan.has_changes
    assert [o.metadata["kit_name"] for o in plan.orphans] == ["beta"]
    assert "`kit apply --prune` deletes it" in render_plan(plan)
    pruned = await build_plan(client, specs_v1()[:1], target="l", dialect=dialect, prune=True)
    assert [(c.action, c.name) for c in pruned.pending] == [("delete", "beta")]
    assert "Plan: 0 to create, 0 to update, 1 to delete." in render_plan(pruned)


async def test_two_remotes_claiming_one_name_are_reported_not_guessed(
    make_client: ClientFactory, dialect: str
) -> None:
    client = make_client(dialect)
    ids = [
        (
            await client.create_assistant(
                AssistantParams(model="m", metadata={"kit_name": "alpha"})
            )
        ).id
        for _ in range(2)
    ]
    plan = await build_plan(client, specs_v1(), target="l", dialect=dialect)
    assert [c.name for c in plan.conflicts] == ["alpha"]
    assert set(plan.conflicts[0].ids) == set(ids)
    assert "alpha" not in {c.name for c in plan.changes}
    text = render_plan(plan)
    assert "! assistant `alpha` is claimed by 2 remote assistants" in text
    assert "Error: 1 conflict(s) must be settled first." in text
    with pytest.raises(PlanError, match="claimed by 2"):
        await apply_plan(client, plan)
    assert len(await client.list_all_assistants()) == 2


async def test_drift_says_what_was_changed_outside_the_kit(
    make_client: ClientFactory, dialect: str
) -> None:
    client = make_client(dialect)
    await apply_plan(client, await build_plan(client, specs_v1(), target="l", dialect=dialect))
    remote = next(a for a in await client.list_all_assistants() if a.name == "Beta Bot")
    await client.update_assistant(
        remote.id, AssistantParams(instructions="Ignore the rules.", temperature=0.9)
    )
    plan = await build_plan(client, specs_v1(), target="l", dialect=dialect)
    beta = next(c for c in plan.changes if c.name == "beta")
    assert beta.action == "update" and beta.drifted and not beta.spec_changed
    assert [(f.field, f.before, f.after) for f in beta.fields] == [
        ("instructions", "Ignore the rules.", None),
        ("temperature", 0.9, None),
    ]
    text = render_plan(plan, diff=True)
    assert "! changed outside the kit since the last apply" in text
    assert "-Ignore the rules." in text
    # applying puts it back (clearing what the spec leaves unset)
    assert (await apply_plan(client, plan)).ok
    again = await build_plan(client, specs_v1(), target="l", dialect=dialect)
    assert not again.has_changes
    back = await client.get_assistant(remote.id)
    assert back.instructions is None and back.temperature is None


async def test_names_limit_the_plan(make_client: ClientFactory, dialect: str) -> None:
    client = make_client(dialect)
    plan = await build_plan(client, specs_v1(), target="l", dialect=dialect, names=["beta"])
    assert [c.name for c in plan.changes] == ["beta"]
    with pytest.raises(ConfigError, match="`nope`"):
        await build_plan(client, specs_v1(), target="l", dialect=dialect, names=["nope"])


async def test_plan_json_and_text_never_hold_plugin_tokens(
    make_client: ClientFactory, dialect: str
) -> None:
    client = make_client(dialect)
    spec = make_spec("plug", tools=[{"type": "plugin", "id": "weather", "auth": {"env": "WTOKEN"}}])
    plan = await build_plan(client, [spec], target="l", dialect=dialect)
    report = await apply_plan(client, plan, environ={"WTOKEN": "tok-123-secret"})
    assert report.ok
    stored = (await client.list_all_assistants())[0]
    # the token was sent; the embedded server, which has no plug-in `weather`, keeps none
    assert stored.tools[0]["auth"]["user_token"] == "[not stored]"
    again = await build_plan(client, [spec], target="l", dialect=dialect)
    assert not again.has_changes
    rotated = await build_plan(client, [spec], target="l", dialect=dialect)
    for shown in (render_plan(plan), json.dumps(plan_json(plan)), json.dumps(plan_json(rotated))):
        assert "tok-123-secret" not in shown
