"""The runner end to end on the embedded server with the scripted backend: assertions pass and
fail through real runs, mocks answer real tool calls, the judge is a scripted model, verdicts
over repetitions, timeouts, cleanup, applied and ephemeral assistants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kit_runner_project import one_turn, write_project

from assistant_kit.api.base import AssistantParams
from assistant_kit.api.local import in_process
from assistant_kit.connect import open_target
from assistant_kit.errors import ConfigError
from assistant_kit.server.app import ServerConfig, create_app
from assistant_kit.server.models.base import ModelBackend, ModelEvent, ModelRequest
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.models.scripted import ScriptedBackend
from assistant_kit.server.tools.base import BuiltinTool
from assistant_kit.server.tools.base import ToolOutput as BuiltinOutput
from assistant_kit.spec.project import Project
from assistant_kit.sync import apply_plan, build_plan
from assistant_kit.testing.records import CheckStatus, Verdict
from assistant_kit.testing.runner import (
    RunOptions,
    Selection,
    collect,
    load_test_project,
    run_suite,
    run_suite_sync,
)

#: (test, expected verdict): a passing and a failing case for each assertion kind.
CASES = [
    (one_turn("pass contains", "capital?", {"contains": "Paris"}), "pass"),
    (one_turn("fail contains", "capital?", {"contains": "London"}), "fail"),
    (one_turn("pass icontains", "capital?", {"icontains": "PARIS"}), "pass"),
    (one_turn("fail icontains", "capital?", {"icontains": "ROME"}), "fail"),
    (one_turn("pass equals", "echo exactly this", {"equals": "exactly this"}), "pass"),
    (one_turn("fail equals", "echo exactly this", {"equals": "exactly that"}), "fail"),
    (one_turn("pass not_contains", "capital?", {"not_contains": "sorry"}), "pass"),
    (one_turn("fail not_contains", "capital?", {"not_contains": "France"}), "fail"),
    (one_turn("pass regex", "capital?", {"regex": "(?i)capital of \\w+"}), "pass"),
    (one_turn("fail regex", "capital?", {"regex": "^Paris$"}), "fail"),
    (one_turn("pass starts_with", "capital?", {"starts_with": "The capital"}), "pass"),
    (one_turn("fail starts_with", "capital?", {"starts_with": "Paris"}), "fail"),
    (one_turn("pass one_of", "echo yes", {"one_of": ["yes", "no"]}), "pass"),
    (one_turn("fail one_of", "echo maybe", {"one_of": ["yes", "no"]}), "fail"),
    (one_turn("pass json", "json please", {"json": {"schema": {"required": ["answer"]}}}), "pass"),
    (one_turn("fail json", "capital?", {"json": True}), "fail"),
    (
        one_turn(
            "pass tool_called",
            "Where is order 42?",
            {"tool_called": {"name": "get_order", "args": {"id": 42}, "count": 1}},
            mocks={"get_order": {"returns": {"status": "shipped"}}},
        ),
        "pass",
    ),
    (
        one_turn(
            "fail tool_called",
            "Where is order 42?",
            {"tool_called": {"name": "get_order", "args_exact": {"id": 7}}},
            mocks={"get_order": {"returns": {"status": "shipped"}}},
        ),
        "fail",
    ),
    (
        one_turn(
            "pass tool_sequence",
            "rates please",
            {"tool_sequence": {"calls": [{"name": "get_rate"}, {"name": "get_rate"}]}},
            mocks={"get_rate": {"sequence": [1.0, 1.1]}},
        ),
        "pass",
    ),
    (one_turn("pass no_tool_called", "capital?", {"no_tool_called": True}), "pass"),
    (
        one_turn(
            "fail no_tool_called",
            "order 1",
            {"no_tool_called": "get_order"},
            mocks={"get_order": {"returns": "ok"}},
        ),
        "fail",
    ),
    (one_turn("pass max_latency_ms", "capital?", {"max_latency_ms": 20000}), "pass"),
    (one_turn("fail max_latency_ms", "capital?", {"max_latency_ms": 1}), "fail"),
    (one_turn("pass max_tokens", "capital?", {"max_tokens": 500}), "pass"),
    (one_turn("fail max_tokens", "capital?", {"max_tokens": 1}), "fail"),
    (one_turn("pass not", "capital?", {"not": {"contains": "Berlin"}}), "pass"),
    (one_turn("fail not", "capital?", {"not": {"contains": "Paris"}}), "fail"),
    (one_turn("pass python", "capital?", {"python": "kit_checks:mentions_paris"}), "pass"),
    (one_turn("fail python", "echo nothing", {"python": "kit_checks:mentions_paris"}), "fail"),
    (one_turn("error python", "capital?", {"python": "kit_checks:explodes"}), "error"),
    (one_turn("pass judge", "capital?", {"judge": {"rubric": "Polite and on topic"}}), "pass"),
    (one_turn("fail judge", "capital?", {"judge": {"rubric": "Rude to the user"}}), "fail"),
    (one_turn("error judge", "capital?", {"judge": {"rubric": "Garbled rubric"}}), "error"),
]

CHECKS_MODULE = """
def mentions_paris(turn):
    return "Paris" in turn.reply, f"reply was {turn.reply!r}"

def explodes(turn):
    raise RuntimeError("boom")
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    write_project(tmp_path, [case for case, _ in CASES])
    (tmp_path / "kit_checks.py").write_text(CHECKS_MODULE, encoding="utf-8")
    return tmp_path


def test_each_assertion_kind_passes_and_fails_through_real_runs(project_dir: Path) -> None:
    project = load_test_project(cwd=project_dir)
    suite = run_suite_sync(project, None, RunOptions(ephemeral=True, jobs=4))
    got = {t.name: t.verdict.value for t in suite.tests}
    assert got == {case["name"]: verdict for case, verdict in CASES}
    by_name = {t.name: t for t in suite.tests}
    judged = by_name["pass judge"].repetitions[0].turns[0].checks[0]
    assert judged.detail["verdict"] is True
    assert judged.detail["reason"] == "it greets the user"
    assert "the judge says fail: nothing rude in it" in by_name["fail judge"].problems()[0]
    garbled = by_name["error judge"].repetitions[0].turns[0].checks[0]
    assert garbled.status is CheckStatus.ERROR and "no JSON object" in garbled.message
    failed = by_name["fail contains"].problems()
    assert failed == [
        "turn 1: failed: contains: 'London': expected the reply to contain 'London'; "
        "reply: 'The capital of France is Paris.'"
    ]


def test_mocks_answer_with_sequences_errors_and_matchers(tmp_path: Path) -> None:
    weather = {
        "get_weather": {
            "when": [
                {"args": {"city": "Paris"}, "returns": {"temp": 21}},
                {"args": {"city": {"regex": "^L"}}, "error": "unknown city"},
            ],
            "default": {"returns": {"temp": 0}},
        }
    }
    tests = [
        one_turn(
            "sequence",
            "rates please",
            {"equals": "Rates: 1.0, 1.1"},
            mocks={"get_rate": {"sequence": [1.0, 1.1]}},
        ),
        one_turn("when", "weather in Paris", {"contains": '{"temp": 21}'}, mocks=weather),
        one_turn("when error", "weather in London", {"contains": "unknown city"}, mocks=weather),
        one_turn("default", "weather in Rome", {"contains": '{"temp": 0}'}, mocks=weather),
        one_turn(
            "error",
            "order 9",
            {"contains": '{"error": "card declined"}'},
            mocks={"get_order": {"error": "card declined"}},
        ),
        {
            "name": "turn override",
            "mocks": {"get_order": {"returns": "test-level"}},
            "turns": [
                {"user": "order 1", "expect": [{"contains": "test-level"}]},
                {
                    "user": "order 2",
                    "mocks": {"get_order": {"returns": "turn-level"}},
                    "expect": [{"contains": "turn-level"}],
                },
            ],
        },
    ]
    write_project(tmp_path, tests)
    suite = run_suite_sync(load_test_project(cwd=tmp_path), None, RunOptions(ephemeral=True))
    assert {t.name: t.verdict for t in suite.tests} == {t["name"]: Verdict.PASS for t in tests}
    by_name = {t.name: t for t in suite.tests}
    calls = by_name["sequence"].repetitions[0].turns[0].turn.tool_calls
    assert [(c.output, c.mock) for c in calls] == [
        ("1.0", "test:get_rate.sequence[0]"),
        ("1.1", "test:get_rate.sequence[1]"),
    ]
    error_call = by_name["error"].repetitions[0].turns[0].turn.tool_calls[0]
    assert error_call.is_error and error_call.mock == "test:get_order.error"
    second = by_name["turn override"].repetitions[0].turns[1].turn.tool_calls[0]
    assert second.mock == "turn:get_order.returns"


def test_an_unmocked_call_fails_with_the_exact_message(tmp_path: Path) -> None:
    write_project(tmp_path, [one_turn("unmocked", "weather in Paris", {"contains": "x"})])
    suite = run_suite_sync(load_test_project(cwd=tmp_path), None, RunOptions(ephemeral=True))
    (test,) = suite.tests
    assert test.verdict is Verdict.FAIL
    assert test.problems() == [
        'turn 1: failed: mocks: the assistant called get_weather({"city": "Paris"}) '
        "but no mock is declared"
    ]
    assert test.repetitions[0].turns[0].turn.status in ("cancelling", "cancelled")


def test_a_slow_turn_times_out_and_its_run_is_cancelled(tmp_path: Path) -> None:
    tests = [
        one_turn("slow", "capital?", {"contains": "Paris"}, timeout=0.3),
        one_turn("in time", "capital?", {"contains": "Paris"}, timeout=10),
    ]
    write_project(tmp_path, tests, delay_ms=1500)
    suite = run_suite_sync(load_test_project(cwd=tmp_path), None, RunOptions(ephemeral=True))
    slow, in_time = suite.tests
    assert slow.verdict is Verdict.ERROR
    turn = slow.repetitions[0].turns[0].turn
    assert turn.errors[0].startswith("the turn timed out after 0.3s")
    assert turn.status in ("cancelling", "cancelled")
    assert turn.latency_ms < 1400
    assert in_time.verdict is Verdict.PASS


class Alternating(ModelBackend):
    """Answers each user message with the next of several scripted backends, in turn."""

    kind = "scripted"

    def __init__(self, *backends: ScriptedBackend) -> None:
        self.backends = backends
        self.turns = 0

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        if request.messages and request.messages[-1].role == "user":
            self.turns += 1
        return self.backends[(self.turns - 1) % len(self.backends)].stream(request)


@pytest.mark.anyio
async def test_repeat_with_min_pass_gives_flaky_verdicts(tmp_path: Path) -> None:
    flaky = {"repeat": 4}
    tests = [
        one_turn("flaky contains passes", "capital?", {"contains": "Paris"}, **flaky, min_pass=2),
        one_turn("flaky contains fails", "capital?", {"contains": "Paris"}, **flaky, min_pass=3),
        one_turn(
            "flaky tool_called passes",
            "order 5",
            {"tool_called": {"name": "get_order"}},
            mocks={"get_order": {"returns": "ok"}},
            **flaky,
            min_pass=2,
        ),
        one_turn(
            "flaky judge fails",
            "capital?",
            {"judge": {"rubric": "Polite answer"}},
            **flaky,
            min_pass=4,
        ),
    ]
    write_project(tmp_path, tests)
    good = ScriptedBackend(
        [
            {"user": "(?i)order", "tool_calls": [{"name": "get_order", "arguments": {"id": 5}}]},
            {"after_tool": True, "reply": "done"},
        ],
        default="Paris it is.",
    )
    bad = ScriptedBackend(default="I do not know.")
    judge = ScriptedBackend(
        [{"user": "Assistant: Paris", "reply": '{"verdict": "pass", "reason": "names Paris"}'}],
        default='{"verdict": "fail", "reason": "no Paris"}',
    )
    alternating = Alternating(good, bad)
    router = ModelRouter({"default": alternating, "judge": judge})
    project = load_test_project(cwd=tmp_path)
    app = create_app(ServerConfig(models=router))
    async with in_process(app) as client:
        suite = await run_suite(project, None, RunOptions(ephemeral=True, client=client))
    got = {t.name: (t.verdict, t.passes, t.flaky) for t in suite.tests}
    assert got == {
        "flaky contains passes": (Verdict.PASS, 2, True),
        "flaky contains fails": (Verdict.FAIL, 2, True),
        "flaky tool_called passes": (Verdict.PASS, 2, True),
        "flaky judge fails": (Verdict.FAIL, 2, True),
    }
    assert [t.test_id for t in suite.flaky] == [t.test_id for t in suite.tests]


def test_ephemeral_assistants_and_threads_are_cleaned_up(tmp_path: Path) -> None:
    write_project(tmp_path, [one_turn("one", "capital?", {"contains": "Paris"}, repeat=2)])
    project = load_test_project(cwd=tmp_path)
    db = tmp_path / "state.db"
    suite = run_suite_sync(project, None, RunOptions(ephemeral=True, database=db))
    (test,) = suite.tests
    assert test.verdict is Verdict.PASS
    thread_ids = [r.thread_id for r in test.repetitions]
    assert len(set(thread_ids)) == 2  # a fresh thread per repetition

    async def remains() -> tuple[list[str], list[str]]:
        async with open_target(project, database=db) as client:
            assistants = [a.id for a in await client.list_all_assistants()]
            alive = []
            for tid in thread_ids:
                try:
                    await client.get_thread(str(tid))
                    alive.append(str(tid))
                except Exception:
                    pass
            return assistants, alive

    assert asyncio.run(remains()) == ([], [])


def test_applied_mode_finds_the_assistant_by_kit_name_or_says_to_apply(tmp_path: Path) -> None:
    write_project(tmp_path, [one_turn("one", "capital?", {"contains": "Paris"})])
    project = load_test_project(cwd=tmp_path)
    db = tmp_path / "state.db"
    options = RunOptions(database=db)

    def error_of(project: Project) -> str | None:
        (test,) = run_suite_sync(project, None, options).tests
        return test.repetitions[0].error if test.verdict is Verdict.ERROR else test.verdict.value

    assert error_of(project) == (
        "assistant `bot` is not applied on target `local`; run `kit apply` first "
        "(or `kit test --ephemeral` to test the spec without applying it)"
    )

    async def apply() -> str:
        async with open_target(project, database=db) as client:
            plan = await build_plan(client, project.specs, target="local", dialect="openai")
            await apply_plan(client, plan)
            (remote,) = await client.list_all_assistants()
            return remote.id

    bot_id = asyncio.run(apply())
    assert error_of(project) == "pass"

    async def edit_on_target() -> None:
        async with open_target(project, database=db) as client:
            await client.update_assistant(bot_id, AssistantParams(instructions="Be verbose."))

    asyncio.run(edit_on_target())
    assert error_of(project) == (
        f"assistant `bot` on target `local` ({bot_id}) is not the current spec (it was changed "
        "on the target since `kit apply`); run `kit apply` first (or `kit test --ephemeral`)"
    )

    asyncio.run(apply())
    spec_file = tmp_path / "assistants" / "bot.yaml"
    spec_file.write_text(spec_file.read_text().replace("Be brief.", "Be terse."))
    assert error_of(load_test_project(cwd=tmp_path)) == (
        f"assistant `bot` on target `local` ({bot_id}) is not the current spec (the spec "
        "changed since `kit apply`); run `kit apply` first (or `kit test --ephemeral`)"
    )


def test_shards_partition_the_selection_exactly(tmp_path: Path) -> None:
    write_project(
        tmp_path, [one_turn(f"t{i:02}", "capital?", {"contains": "Paris"}) for i in range(11)]
    )
    project = load_test_project(cwd=tmp_path)
    everything = {i.test_id for i in collect(project)}
    from assistant_kit.testing.selection import parse_shard

    shards = [
        {i.test_id for i in collect(project, Selection(shard=parse_shard(f"{n}/3")))}
        for n in (1, 2, 3)
    ]
    assert set().union(*shards) == everything
    assert sum(len(s) for s in shards) == len(everything) == 11
    assert sorted(len(s) for s in shards) == [3, 4, 4]
    suite = run_suite_sync(project, Selection(shard=parse_shard("2/3")), RunOptions(ephemeral=True))
    assert {t.test_id for t in suite.tests} == shards[1]


def test_names_keyword_tags_and_exitfirst_choose_what_runs(tmp_path: Path) -> None:
    tests = [
        one_turn("a fails", "capital?", {"contains": "London"}, tags=["smoke"]),
        one_turn("b passes", "capital?", {"contains": "Paris"}, tags=["smoke"]),
        one_turn("c passes", "capital?", {"contains": "Paris"}),
    ]
    write_project(tmp_path, tests)
    project = load_test_project(cwd=tmp_path)
    ids = lambda sel: [i.case.name for i in collect(project, sel)]  # noqa: E731
    assert ids(Selection(tags=("smoke",))) == ["a fails", "b passes"]
    assert ids(Selection(keyword="passes and not smoke")) == ["c passes"]
    assert ids(Selection(names=("bot::c passes",))) == ["c passes"]
    with pytest.raises(ConfigError, match="no assistant or test named 'nope'"):
        collect(project, Selection(names=("nope",)))
    stopped = run_suite_sync(project, None, RunOptions(ephemeral=True, exitfirst=True))
    assert [t.name for t in stopped.tests] == ["a fails"]


def test_skipped_tests_do_not_run(tmp_path: Path) -> None:
    tests = [one_turn("later", "capital?", {"contains": "London"}, skip="not yet")]
    write_project(tmp_path, tests)
    suite = run_suite_sync(load_test_project(cwd=tmp_path), None, RunOptions(ephemeral=True))
    (test,) = suite.tests
    assert (test.verdict, test.skip_reason, test.repetitions) == (Verdict.SKIP, "not yet", ())


class Corpus(BuiltinTool):
    """A quark_search that answers from one sentence (the server runs it, not the runner)."""

    type = "quark_search"

    def definition(self) -> dict[str, object]:
        return {
            "name": "quark_search",
            "description": "Search the web",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        }

    async def call(self, arguments, context):  # type: ignore[no-untyped-def]
        return BuiltinOutput(f"Results for {arguments.get('query')}: Paris is the capital.")


@pytest.mark.anyio
@pytest.mark.parametrize("dialect", ["openai", "dashscope"])
async def test_built_in_tool_steps_are_recorded_as_tool_calls(tmp_path: Path, dialect: str) -> None:
    tests = [
        one_turn(
            "searches",
            "search the capital",
            {"tool_called": {"name": "quark_search", "args": {"query": {"regex": "capital"}}}},
            {"contains": "Paris is the capital"},
        )
    ]
    write_project(tmp_path, tests)
    spec = tmp_path / "assistants" / "bot.yaml"
    spec.write_text(spec.read_text().replace("tools:\n", "tools:\n- quark_search\n", 1))
    backend = ScriptedBackend(
        [
            {
                "user": "(?i)search (.*)",
                "tool_calls": [{"name": "quark_search", "arguments": {"query": "{1}"}}],
            },
            {"after_tool": "quark_search", "reply": "Found: {output}"},
        ]
    )
    app = create_app(
        ServerConfig(models=ModelRouter({"default": backend}), tools={"quark_search": Corpus()})
    )
    project = load_test_project(cwd=tmp_path)
    async with in_process(app, dialect=dialect) as client:
        suite = await run_suite(project, None, RunOptions(ephemeral=True, client=client))
    (test,) = suite.tests
    assert test.verdict is Verdict.PASS, test.problems()
    (call,) = test.repetitions[0].turns[0].turn.tool_calls
    assert (call.kind, call.name, call.arguments) == (
        "builtin",
        "quark_search",
        {"query": "the capital"},
    )
    assert call.output == "Results for the capital: Paris is the capital."


def test_the_dashscope_dialect_runs_the_same_conversations(tmp_path: Path) -> None:
    tests = [
        one_turn(
            "looks up an order",
            "Where is order 42?",
            {"tool_called": {"name": "get_order", "args": {"id": 42}}},
            {"contains": "shipped"},
            mocks={"get_order": {"returns": {"status": "shipped"}}},
        ),
        one_turn("knows the capital", "capital?", {"equals": "The capital of France is Paris."}),
    ]
    kit = {"targets": {"local": {"provider": "local", "dialect": "dashscope"}}}
    write_project(tmp_path, tests, kit=kit)
    project = load_test_project(cwd=tmp_path)
    assert project.target.dialect == "dashscope"
    suite = run_suite_sync(project, None, RunOptions(ephemeral=True))
    assert [t.verdict for t in suite.tests] == [Verdict.PASS, Verdict.PASS], [
        t.problems() for t in suite.tests
    ]
    turn = suite.tests[0].repetitions[0].turns[0].turn
    assert turn.usage is not None and turn.usage.total_tokens > 0


def test_kit_yaml_tags_exclude_tags_and_concurrency_are_defaults(tmp_path: Path) -> None:
    tests = [
        one_turn("smoke one", "capital?", {"contains": "Paris"}, tags=["smoke"]),
        one_turn("smoke but slow", "capital?", {"contains": "Paris"}, tags=["smoke", "slow"]),
        one_turn("other", "capital?", {"contains": "Paris"}),
    ]
    kit = {"test": {"tags": ["smoke"], "exclude_tags": ["slow"], "concurrency": 2}}
    write_project(tmp_path, tests, kit=kit)
    project = load_test_project(cwd=tmp_path)
    assert [i.case.name for i in collect(project)] == ["smoke one"]
    assert [i.case.name for i in collect(project, Selection(tags=("smoke", "other")))] == [
        "smoke one"
    ]
    # asking for an excluded tag by name selects its tests
    assert [i.case.name for i in collect(project, Selection(tags=("slow",)))] == ["smoke but slow"]
    running: list[int] = []
    seen: list[int] = []
    options = RunOptions(
        ephemeral=True,
        on_start=lambda _item: (running.append(1), seen.append(len(running))),
        on_result=lambda _result: running.pop(),
    )
    named = Selection(names=("bot::smoke one", "bot::other", "bot::smoke but slow"))
    suite = run_suite_sync(project, named, options)
    assert [t.name for t in suite.tests] == ["smoke one", "other"]
    assert max(seen) == 2  # test.concurrency: both at once
