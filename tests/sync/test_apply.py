from __future__ import annotations

import collections

import pytest

from assistant_kit.api.base import AssistantClient
from assistant_kit.errors import ConfigError
from assistant_kit.sync.apply import apply_plan, spec_params
from assistant_kit.sync.diff import managed_name
from assistant_kit.sync.plan import build_plan
from assistant_kit.sync.render import render_outcome, render_report
from assistant_kit.sync.retry import RetryPolicy

from .conftest import ClientFactory
from .faults import KINDS, FaultyTransport
from .specs import WEATHER_TOOL, make_spec

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(attempts=8, base_delay=0.001, max_delay=0.01)


def many(n: int, version: str = "v1") -> list:
    return [
        make_spec(
            f"bot-{i:03d}",
            instructions=f"You are bot {i} ({version}).",
            tools=["quark_search", WEATHER_TOOL] if i % 2 else [],
            settings={"temperature": 0.5},
        )
        for i in range(n)
    ]


async def converge(client: AssistantClient, specs: list, dialect: str) -> None:
    """Apply until the plan is empty; then check that no name exists twice."""
    for _ in range(3):
        plan = await build_plan(client, specs, target="l", dialect=dialect, retry=FAST)
        if not plan.has_changes:
            break
        await apply_plan(client, plan, retry=FAST)
    final = await build_plan(client, specs, target="l", dialect=dialect, retry=FAST)
    assert not final.has_changes and not final.conflicts
    names = collections.Counter(managed_name(a) for a in await client.list_all_assistants())
    assert names == collections.Counter(s.name for s in specs)


async def test_apply_then_plan_has_no_changes(make_client: ClientFactory, dialect: str) -> None:
    client = make_client(dialect)
    specs = many(5)
    plan = await build_plan(client, specs, target="l", dialect=dialect)
    report = await apply_plan(client, plan)
    assert report.ok and report.counts == {"created": 5, "updated": 0, "deleted": 0, "failed": 0}
    assert render_report(report) == "Apply complete: 5 created, 0 updated, 0 deleted."
    again = await build_plan(client, specs, target="l", dialect=dialect)
    assert not again.has_changes and again.counts["noop"] == 5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_each_fault_is_retried_without_a_duplicate(
    make_client: ClientFactory, asgi: object, dialect: str, kind: str, method: str
) -> None:
    setup = make_client(dialect)
    start = many(4)
    await apply_plan(setup, await build_plan(setup, start, target="l", dialect=dialect))
    transport = FaultyTransport(asgi).add(method, "/assistants", kind, kind)  # type: ignore[arg-type]
    client = make_client(dialect, transport)
    # two creates, one update, one delete
    wanted = [*many(3)[:2], make_spec("bot-002", instructions="new"), *many(6)[4:]]
    plan = await build_plan(client, wanted, target="l", dialect=dialect, prune=True, retry=FAST)
    assert plan.counts == {"create": 2, "update": 1, "delete": 1, "noop": 2}
    report = await apply_plan(client, plan, retry=FAST)
    assert report.ok, render_report(report)
    assert transport.injected[kind] == 2
    await converge(setup, wanted, dialect)


async def test_a_create_whose_answer_is_lost_is_found_not_repeated(
    make_client: ClientFactory, asgi: object, dialect: str
) -> None:
    transport = FaultyTransport(asgi).add("POST", "/assistants$", "lost")  # type: ignore[arg-type]
    client = make_client(dialect, transport)
    plan = await build_plan(client, many(1), target="l", dialect=dialect)
    report = await apply_plan(client, plan, retry=FAST)
    (outcome,) = report.outcomes
    assert outcome.ok and outcome.adopted
    assert transport.count("POST") == 1  # created once, then found by listing
    assert "found after an unanswered create" in render_outcome(outcome)
    assert len(await client.list_all_assistants()) == 1


async def test_random_faults_under_concurrency_converge_without_duplicates(
    make_client: ClientFactory, asgi: object, dialect: str
) -> None:
    transport = FaultyTransport(asgi, random_rate=0.3, seed=7, delay=0.001)  # type: ignore[arg-type]
    client = make_client(dialect, transport)
    specs = many(40)
    plan = await build_plan(client, specs, target="l", dialect=dialect, retry=FAST)
    report = await apply_plan(client, plan, parallelism=8, retry=FAST)
    assert 1 < transport.max_in_flight <= 8
    assert sum(transport.injected.values()) > 10
    assert report.ok, render_report(report)
    changed = [*many(20, "v2")[:20], *specs[20:]]
    plan = await build_plan(client, changed, target="l", dialect=dialect, retry=FAST)
    assert plan.counts["update"] == 20
    assert (await apply_plan(client, plan, parallelism=3, retry=FAST)).ok
    assert transport.max_in_flight <= 8
    await converge(make_client(dialect), changed, dialect)


async def test_a_partial_failure_reports_both_sides_and_the_next_apply_converges(
    make_client: ClientFactory, asgi: object, dialect: str
) -> None:
    transport = FaultyTransport(asgi).add("POST", "/assistants$", *["503"] * 3)  # type: ignore[arg-type]
    client = make_client(dialect, transport)
    specs = many(3)
    plan = await build_plan(client, specs, target="l", dialect=dialect)
    report = await apply_plan(
        client, plan, parallelism=1, retry=RetryPolicy(attempts=3, base_delay=0.001)
    )
    assert not report.ok
    assert report.counts == {"created": 2, "updated": 0, "deleted": 0, "failed": 1}
    text = render_report(report)
    assert text.startswith("Apply failed: 2 created, 0 updated, 0 deleted, 1 failed:")
    assert 'assistant "bot-000": 503' in text
    assert "Run `kit apply` again" in text
    await converge(client, specs, dialect)


async def test_a_missing_plugin_token_stops_apply_before_any_write(
    make_client: ClientFactory, asgi: object, dialect: str
) -> None:
    transport = FaultyTransport(asgi)  # type: ignore[arg-type]
    client = make_client(dialect, transport)
    specs = [
        make_spec("a"),
        make_spec("b", tools=[{"type": "plugin", "id": "w", "auth": {"env": "NO_SUCH_TOKEN"}}]),
    ]
    plan = await build_plan(client, specs, target="l", dialect=dialect)
    with pytest.raises(ConfigError, match="NO_SUCH_TOKEN"):
        await apply_plan(client, plan, environ={})
    assert transport.count("POST") == 0


async def test_spec_params_read_plugin_tokens_and_add_the_marks(
    make_client: ClientFactory, dialect: str
) -> None:
    spec = make_spec(
        "e",
        tools=[{"type": "plugin", "id": "w", "auth": {"env": "W_TOKEN"}}],
        metadata={"team": "x"},
    )
    params = spec_params(spec, dialect, marks={"kit_test": "chat:e"}, environ={"W_TOKEN": "t0k"})
    assert params.tools[0]["auth"]["user_token"] == "t0k"  # never the ${W_TOKEN} placeholder
    created = await make_client(dialect).create_assistant(params)
    # the embedded server has no plug-in `w`: it keeps no token (issue 13)
    assert created.tools[0]["auth"]["user_token"] == "[not stored]"
    assert created.metadata == {"team": "x", "kit_test": "chat:e"}
    with pytest.raises(ConfigError, match="W_TOKEN"):
        spec_params(spec, dialect, environ={})


async def test_parallelism_must_be_positive(make_client: ClientFactory, dialect: str) -> None:
    client = make_client(dialect)
    plan = await build_plan(client, many(1), target="l", dialect=dialect)
    with pytest.raises(ValueError, match="parallelism"):
        await apply_plan(client, plan, parallelism=0)


async def test_apply_waits_as_long_as_retry_after_says(
    make_client: ClientFactory, asgi: object, dialect: str
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    transport = FaultyTransport(asgi).add("POST", "/assistants$", "429")  # type: ignore[arg-type]
    client = make_client(dialect, transport)
    plan = await build_plan(client, many(1), target="l", dialect=dialect)
    policy = RetryPolicy(base_delay=2.0, sleep=sleep)
    report = await apply_plan(client, plan, retry=policy)
    assert report.ok and report.outcomes[0].attempts == 2
    # retry-after-ms: 5 wins over the backoff (up to 2 s), with at most 10 ms of jitter
    assert len(waits) == 1 and 0.005 <= waits[0] <= 0.015
    assert transport.count("POST") == 2
