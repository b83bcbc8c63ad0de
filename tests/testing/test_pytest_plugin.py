"""The pytest plugin: spec tests collected as items and run by the kit's runner."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from kit_runner_project import one_turn, write_project

pytest_plugins = ["pytester"]

TESTS = [
    one_turn("knows the capital", "capital?", {"contains": "Paris"}, tags=["smoke"]),
    one_turn("expects london", "capital?", {"contains": "London"}),
    one_turn(
        "looks up an order",
        "Where is order 42?",
        {"tool_called": {"name": "get_order", "args": {"id": 42}}},
        mocks={"get_order": {"returns": {"status": "shipped"}}},
    ),
    one_turn("later", "capital?", {"contains": "Paris"}, skip="not ready"),
]


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    root = Path(pytester.path)
    write_project(root, TESTS)
    return root


def test_spec_tests_become_items_with_the_runners_verdicts(
    pytester: pytest.Pytester, project: Path
) -> None:
    result = pytester.runpytest("assistants", "--kit-ephemeral", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "assistants/bot.yaml::knows the capital PASSED*",
            "assistants/bot.yaml::expects london FAILED*",
            "assistants/bot.yaml::looks up an order PASSED*",
            "assistants/bot.yaml::later SKIPPED*",
        ]
    )
    # the failure shows kit test's report with the transcript
    result.stdout.fnmatch_lines(
        [
            "*_ conversation: expects london _*",
            "FAIL   bot::expects london    0/1*",
            "FAIL bot::expects london",
            "  turn 1: failed: contains: 'London': expected the reply to contain 'London'; "
            "reply: 'The capital of France is Paris.'",
            "  transcript (repetition 1):",
            "*user: capital?",
            "*assistant: The capital of France is Paris.",
        ]
    )


def test_k_and_exitfirst_work_on_spec_items(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("assistants", "--kit-ephemeral", "-k", "smoke or order")
    result.assert_outcomes(passed=2, deselected=2)
    result = pytester.runpytest("assistants", "--kit-ephemeral", "-x")
    result.assert_outcomes(passed=1, failed=1)


def test_junitxml_and_reportinfo(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest("assistants", "--kit-ephemeral", "--junitxml", "out.xml")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    root = ET.parse(project / "out.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {t["name"] for t in TESTS}
    assert cases["expects london"].find("failure") is not None
    items, _ = pytester.inline_genitems("assistants")
    spec_text = (project / "assistants" / "bot.yaml").read_text().splitlines()
    for item in items:
        path, line, label = item.reportinfo()
        assert label == f"conversation: {item.name}"
        assert Path(path) == project / "assistants" / "bot.yaml"
        assert line is not None and spec_text[line].lstrip("- ").startswith("name:")


def test_xdist_runs_spec_items_in_workers(pytester: pytest.Pytester, project: Path) -> None:
    result = pytester.runpytest_subprocess("assistants", "--kit-ephemeral", "-n", "2")
    result.assert_outcomes(passed=2, failed=1, skipped=1)


def test_yaml_outside_spec_folders_is_left_alone(pytester: pytest.Pytester) -> None:
    spec = {"name": "bot", "model": "demo", "tests": [one_turn("x", "hi", {"contains": "OK"})]}
    other = Path(pytester.path) / "other"
    other.mkdir()
    (other / "bot.yaml").write_text(yaml.safe_dump(spec))
    (other / "data.yaml").write_text(yaml.safe_dump({"tests": [1, 2]}))
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest("other", "test_plain.py")
    result.assert_outcomes(passed=1)
    # asked for: --kit claims assistant specs wherever they are (still not other YAML)
    items, _ = pytester.inline_genitems("other", "--kit")
    assert [item.name for item in items] == ["x"]


def test_kit_collect_never_turns_collection_off(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeini("[pytest]\nkit_collect = never\n")
    result = pytester.runpytest("assistants")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_broken_spec_is_a_collection_error(pytester: pytest.Pytester, project: Path) -> None:
    path = project / "assistants" / "bot.yaml"
    path.write_text(path.read_text().replace("model: demo", "model: 12"))
    result = pytester.runpytest("assistants")
    result.stdout.fnmatch_lines(["*bot.yaml:*model*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_applied_mode_errors_say_to_apply_and_exclude_tags_apply(
    pytester: pytest.Pytester,
) -> None:
    root = Path(pytester.path)
    write_project(root, TESTS, kit={"test": {"exclude_tags": ["smoke"]}})
    result = pytester.runpytest("assistants", "-v")
    result.assert_outcomes(failed=2, skipped=1)  # "knows the capital" (smoke) is not collected
    result.stdout.fnmatch_lines(
        ["*error: assistant `bot` is not applied on target `local`; run `kit apply` first*"]
    )
    result.stdout.no_fnmatch_line("*knows the capital*")
