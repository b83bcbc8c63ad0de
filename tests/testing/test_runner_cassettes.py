"""Record / replay through the runner, reports that parse, and a sentinel secret that reaches no
report and no cassette: against a real ``kit serve`` on loopback, then with the server stopped."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from kit_runner_project import one_turn, write_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))

from kit_server import running_kit_server

from assistant_kit import connect as targets
from assistant_kit.testing.records import Verdict
from assistant_kit.testing.report import render_text, write_reports
from assistant_kit.testing.runner import RunOptions, load_test_project, run_suite_sync
from assistant_kit.testing.secrets import Scrubber, secret_env_names

SENTINEL = "sk-SENTINEL-7f3a9c1e55d0"

TESTS = [
    one_turn("echoes", f"echo the key is {SENTINEL}", {"contains": "the key is"}),
    one_turn(
        "looks up an order",
        "Where is order 42?",
        {"tool_called": {"name": "get_order", "args": {"id": 42}}},
        {"contains": "shipped"},
        mocks={"get_order": {"returns": {"status": "shipped"}}},
        repeat=2,
    ),
    one_turn("fails", "capital?", {"contains": "London"}),
]


def test_record_against_kit_serve_then_replay_with_the_server_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_SENTINEL_KEY", SENTINEL)
    cassettes, out = tmp_path / "cassettes", tmp_path / "out"
    served = {"provider": "local", "base_url": "http://127.0.0.1:1/v1"}
    kit = {
        "default_target": "served",
        "targets": {"served": {**served, "api_key_env": "KIT_SENTINEL_KEY"}},
    }
    write_project(tmp_path, TESTS, kit=kit)  # kit serve reads its model routing from it
    config = ["--config", str(tmp_path / "kit.yaml")]
    with running_kit_server(api_key=SENTINEL, output_dir=tmp_path, extra_args=config) as server:
        kit["targets"]["served"]["base_url"] = server.openai_url  # type: ignore[index]
        write_project(tmp_path, TESTS, kit=kit)
        project = load_test_project(cwd=tmp_path)
        live = run_suite_sync(project, None, RunOptions(ephemeral=True, record=cassettes, jobs=3))
    verdicts = {t.name: t.verdict for t in live.tests}
    assert verdicts == {
        "echoes": Verdict.PASS,
        "looks up an order": Verdict.PASS,
        "fails": Verdict.FAIL,
    }
    echoed = live.tests[0].repetitions[0].turns[0].turn.reply
    assert SENTINEL in echoed  # the secret really went through the conversation

    # the server is gone: replay needs neither it nor any network
    monkeypatch.setattr(targets, "embedded_app", _no_server)
    replayed = run_suite_sync(project, None, RunOptions(ephemeral=True, replay=cassettes, jobs=3))
    assert {t.name: t.verdict for t in replayed.tests} == verdicts
    assert [[r.turns[0].turn.tool_calls for r in t.repetitions] for t in replayed.tests[1:2]] == [
        [r.turns[0].turn.tool_calls for r in t.repetitions] for t in live.tests[1:2]
    ]
    assert replayed.tests[0].repetitions[0].turns[0].turn.reply == "the key is [REDACTED]"

    scrubber = Scrubber.from_env(secret_env_names(project.config))
    written = write_reports(
        live, junit=out / "j.xml", json_path=out / "r.json", html=out / "r.html", scrubber=scrubber
    )
    files = [*written, *cassettes.iterdir()]
    assert len(list(cassettes.iterdir())) == 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert SENTINEL not in text, path
    assert SENTINEL not in render_text(live, scrubber=scrubber)
    cassette = json.loads(next(cassettes.glob("bot--looks-up-an-order.*.json")).read_text())
    assert {ex["repetition"] for ex in cassette["exchanges"]} == {0, 1}
    assert all(
        ex["request"]["headers"].get("authorization") == "[REDACTED]"
        for ex in cassette["exchanges"]
    )

    junit = ET.parse(out / "j.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("3", "1", "0")
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert set(cases) == {"echoes", "looks up an order", "fails"}
    failure = cases["fails"].find("failure")
    assert failure is not None and "expected the reply to contain 'London'" in (
        failure.get("message") or ""
    )


def _no_server(*_args: object, **_kw: object) -> object:
    raise AssertionError("replay must not start a server")


def test_replay_of_a_changed_spec_is_an_error_naming_the_test(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    write_project(tmp_path, TESTS[1:])
    project = load_test_project(cwd=tmp_path)
    recorded = run_suite_sync(project, None, RunOptions(ephemeral=True, record=cassettes))
    assert [t.verdict for t in recorded.tests] == [Verdict.PASS, Verdict.FAIL]

    changed = [dict(TESTS[1], turns=[{"user": "Where is order 43?", "expect": []}]), TESTS[2]]
    write_project(tmp_path, changed)
    again = run_suite_sync(
        load_test_project(cwd=tmp_path), None, RunOptions(ephemeral=True, replay=cassettes)
    )
    first = again.tests[0]
    assert first.verdict is Verdict.ERROR
    assert "'bot::looks up an order' was recorded from another version of its spec" in (
        first.repetitions[0].error or ""
    )
    advice = f"kit test --record {cassettes} 'bot::looks up an order'"
    assert advice in (first.repetitions[0].error or "")
    assert again.tests[1].verdict is Verdict.FAIL  # unchanged: still replayed

    write_project(tmp_path, [*changed, one_turn("new", "capital?", {"contains": "Paris"})])
    newer = run_suite_sync(
        load_test_project(cwd=tmp_path), None, RunOptions(ephemeral=True, replay=cassettes)
    )
    assert "no cassette for 'bot::new'" in (newer.tests[2].repetitions[0].error or "")
