"""`kit test` as a user runs it: the repo's example assistants against a project whose kit.yaml
routes their models to a scripted backend, reports, shards, exit codes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

#: Plays the example assistants' conversations the way their tests expect.
EXAMPLES_SCRIPT = {
    "rules": [
        {
            "user": "(?i)cancel order (\\d+)",
            "after_tool": "get_order_status",
            "tool_calls": [
                {"name": "cancel_order", "arguments": '{"order_id": {1}, "reason": "wrong size"}'}
            ],
        },
        {
            "user": "(?i)cancel order (\\d+)",
            "after_tool": "cancel_order",
            "reply": "I could not cancel order {1}: {output}",
        },
        {
            "user": "(?i)cancel order (\\d+)",
            "tool_calls": [{"name": "get_order_status", "arguments": '{"order_id": {1}}'}],
        },
        {
            "user": "(?i)order (\\d+)",
            "after_tool": "get_order_status",
            "reply": "Order {1}: {output}",
        },
        {
            "user": "(?i)order (\\d+)",
            "tool_calls": [{"name": "get_order_status", "arguments": '{"order_id": {1}}'}],
        },
        {
            "user": "(?i)status now",
            "after_tool": "get_order_status",
            "reply": "Its status now: {output}",
        },
        {
            "user": "(?i)status now",
            "tool_calls": [{"name": "get_order_status", "arguments": '{"order_id": 7}'}],
        },
        {"user": "(?i)capital of France", "reply": "The capital of France is Paris."},
        {"user": "(?i)capital of Japan", "reply": "The capital of Japan is Tokyo."},
        {"user": "(?i)largest ocean", "reply": "The Pacific Ocean."},
        {"user": "(?i)longest river in Africa", "reply": "The Nile."},
        {"user": "(?i)capital of Italy", "reply": "Rome."},
        {"user": "(?i)river flows through", "reply": "The Tiber flows through Rome."},
        {
            "user": "(?i)draw a picture of (.*)\\.",
            "tool_calls": [{"name": "text_to_image", "arguments": {"prompt": "{1}"}}],
        },
        {"after_tool": "text_to_image", "reply": "Here is your picture: {output}"},
        {
            "user": "(?i)2 to the power of 20",
            "tool_calls": [{"name": "code_interpreter", "arguments": {"code": "print(2**20)"}}],
        },
        {"after_tool": "code_interpreter", "reply": "2 to the power of 20 is {output}"},
    ]
}

#: Tests the examples declare that run (one more declares `skip`).
EXAMPLES_RUN = 9


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """The repo's assistants/ in a project whose models all route to the scripted backend."""
    shutil.copytree(REPO / "assistants", tmp_path / "assistants")
    shutil.copytree(REPO / "examples", tmp_path / "examples")  # the search corpus kit.yaml names
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "examples.yaml").write_text(yaml.safe_dump(EXAMPLES_SCRIPT))
    kit = yaml.safe_load((REPO / "kit.yaml").read_text())
    kit["server"]["models"] = {
        "default": {"backend": "scripted", "script": "scripts/examples.yaml"}
    }
    kit["test"].pop("exclude_tags", None)  # every example, the strong-model ones too
    (tmp_path / "kit.yaml").write_text(yaml.safe_dump(kit, sort_keys=False))
    return tmp_path


def kit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant_kit", "test", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_examples_pass_against_the_scripted_backend_and_junit_is_written(examples: Path) -> None:
    done = kit(examples, "--ephemeral", "-j", "4", "--junit", "junit.xml")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    table = {line.split()[1]: line.split()[0] for line in lines[: EXAMPLES_RUN + 1]}
    assert table == {
        "art-maestro::draws": "PASS",
        "data-analyst::computes": "PASS",
        "art-maestro::knows": "PASS",
        "data-analyst::answers": "SKIP",
        "geography-tutor::names": "PASS",
        "geography-tutor::knows": "PASS",
        "geography-tutor::finds": "PASS",
        "geography-tutor::follows": "PASS",
        "order-desk::looks": "PASS",
        "order-desk::reports": "PASS",
    }
    cancellation = next(line for line in lines if "order-desk::reports a failed" in line)
    assert "3/3" in cancellation and "(min_pass 2)" in cancellation
    skipped = next(line for line in lines if line.startswith("SKIP"))
    # piped: one line per result as it finishes, counted [n/N]
    assert skipped.endswith("(the judge model is configured per project)  [1/10]")
    assert sorted(line.rsplit(maxsplit=1)[1] for line in lines[:10]) == sorted(
        f"[{n}/10]" for n in range(1, 11)
    )
    total = EXAMPLES_RUN + 1
    assert lines[-2].startswith(
        f"{total} tests: {EXAMPLES_RUN} passed, 0 failed, 0 errors, 1 skipped in "
    )
    assert lines[-1] == "Wrote junit.xml"
    assert done.stderr == ""  # no progress line without a terminal
    root = ET.parse(examples / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == (str(total), "0", "1")


def test_a_broken_expectation_exits_1_with_the_transcript(examples: Path) -> None:
    spec = examples / "assistants" / "art-maestro.yaml"
    spec.write_text(spec.read_text().replace("icontains: Paris", "icontains: Berlin"))
    done = kit(examples, "--ephemeral", "art-maestro", "-k", "capital", "--json", "r.json")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(
        r"FAIL   art-maestro::knows a capital    0/1 +\d+\.\d\ds  \[1/1\]", lines[0]
    )
    assert re.fullmatch(r"    turn 1 \(\d+ ms\)", lines[5])
    assert lines[1:5] + lines[6:] == [
        "",
        "FAIL art-maestro::knows a capital",
        "  turn 1: failed: icontains: 'Berlin': expected the reply to contain 'Berlin' "
        "(ignoring case); reply: 'The capital of France is Paris.'",
        "  transcript (repetition 1):",
        "      user: What is the capital of France?",
        "      assistant: The capital of France is Paris.",
        "      ✗ icontains: 'Berlin': expected the reply to contain 'Berlin' (ignoring case); "
        "reply: 'The capital of France is Paris.'",
        "",
        lines[-2],
        "Wrote r.json",
    ]
    assert lines[-2].startswith("1 test: 0 passed, 1 failed, 0 errors, 0 skipped, 1 deselected in ")
    report = json.loads((examples / "r.json").read_text())
    assert report["summary"] == {
        "tests": 1,
        "passed": 0,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
        "flaky": 0,
        "deselected": 1,
        "not_run": 0,
        "interrupted": False,
        "ok": False,
    }


def test_no_test_selected_exits_5_and_counts_the_deselected(examples: Path) -> None:
    done = kit(examples, "--ephemeral", "-k", "zzz", "--json", "-")
    assert done.returncode == 5, done.stdout + done.stderr
    assert done.stderr == f"No tests selected ({EXAMPLES_RUN + 1} deselected).\n"
    report = json.loads(done.stdout)  # `--json -`: stdout is the report, and only it
    assert report["summary"]["tests"] == 0
    assert report["summary"]["deselected"] == EXAMPLES_RUN + 1


def test_json_to_stdout_keeps_the_text_on_stderr(examples: Path) -> None:
    done = kit(examples, "--ephemeral", "geography-tutor", "--tag", "smoke", "--json", "-")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    chosen = report["summary"]["tests"]
    assert chosen and report["summary"]["passed"] == chosen
    assert f"{chosen} tests: {chosen} passed," in done.stderr
    assert not (examples / "-").exists()


def test_shards_split_the_examples_between_runs(examples: Path) -> None:
    seen = []
    for shard in ("1/2", "2/2"):
        done = kit(examples, "--ephemeral", "--shard", shard, "--json", "r.json")
        assert done.returncode == 0, done.stdout + done.stderr
        seen.append({t["test_id"] for t in json.loads((examples / "r.json").read_text())["tests"]})
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == EXAMPLES_RUN + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--shard", "3/2"], "--shard '3/2': i must be from 1 to n", id="shard"),
        pytest.param(["nobody"], "no assistant or test named 'nobody'", id="unknown-name"),
        pytest.param(
            ["--record", "a", "--replay", "b"], "cannot be used together", id="record-and-replay"
        ),
        pytest.param(["-k", "a and"], "-k 'a and': expression ends early", id="bad-k"),
        pytest.param(["--target", "nowhere"], "unknown target `nowhere`", id="unknown-target"),
    ],
)
def test_usage_and_configuration_errors_exit_2(
    examples: Path, args: list[str], message: str
) -> None:
    done = kit(examples, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr


def test_record_then_replay_from_the_command_line(examples: Path) -> None:
    first = kit(examples, "--ephemeral", "order-desk", "--record", "cassettes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.splitlines()[-1] == "Recorded cassettes in cassettes"
    again = kit(examples, "--ephemeral", "order-desk", "--replay", "cassettes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 tests: 2 passed" in again.stdout


def test_kit_yaml_test_section_gives_defaults(examples: Path) -> None:
    config = yaml.safe_load((examples / "kit.yaml").read_text())
    config["test"].update(cassettes="tapes", exclude_tags=["strong-model"], concurrency=3)
    (examples / "kit.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    first = kit(examples, "--ephemeral", "--record")
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:4]] == [  # the smoke tests
        ["PASS", "art-maestro::knows"],
        ["PASS", "geography-tutor::names"],
        ["PASS", "geography-tutor::knows"],
        ["PASS", "geography-tutor::finds"],
    ]
    assert lines[4:] == [
        "",
        lines[5],
        "Recorded cassettes in " + str(examples / "tapes"),
    ]
    assert len(list((examples / "tapes").iterdir())) == 4
    again = kit(examples, "--ephemeral", "--replay")
    assert again.returncode == 0, again.stdout + again.stderr
    config["test"].pop("cassettes")
    (examples / "kit.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    missing = kit(examples, "--ephemeral", "--replay")
    assert missing.returncode == 2
    assert "--replay needs a folder (or kit.yaml test.cassettes)" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--html", "/proc/kit-report.html"],
            "--html /proc/kit-report.html: cannot write in /proc: ",
            id="html",
        ),
        pytest.param(
            ["--junit", "/proc/no/junit.xml"],
            "--junit /proc/no/junit.xml: cannot write in /proc/no: ",
            id="junit",
        ),
        pytest.param(
            ["--record", "/proc/kit-cassettes"],
            "--record /proc/kit-cassettes: cannot write in /proc/kit-cassettes: ",
            id="record",
        ),
        pytest.param(["--tag", "smok"], "no test has the tag 'smok'; tags: smoke, ", id="tag"),
    ],
)
def test_unusable_outputs_and_unknown_tags_exit_2_before_any_test_runs(
    examples: Path, args: list[str], message: str
) -> None:
    done = kit(examples, "--ephemeral", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""  # nothing ran


def test_a_target_that_is_down_is_one_error_with_the_kit_serve_hint(examples: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = yaml.safe_load((examples / "kit.yaml").read_text())
    config["targets"]["serve"]["base_url"] = f"http://127.0.0.1:{port}/v1"
    (examples / "kit.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = kit(examples, "--target", "serve", "-j", "4")  # every test, four at a time
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ERROR" not in done.stdout  # no ERROR block per test (a skipped one may show)
    assert done.stderr.splitlines() == [
        f"Error: cannot reach http://127.0.0.1:{port}: openai: ConnectError: "
        "All connection attempts failed",
        f"hint: nothing listens on port {port} of this machine; start the server with "
        f"`kit serve --port {port}` (or fix the target's base_url in kit.yaml)",
    ]


def test_the_advice_after_a_cassette_miss_is_a_command_that_records_that_test(
    examples: Path,
) -> None:
    # a name holding `not` (or `or`, or a parenthesis) is no -k expression; the advice must work
    spec = examples / "assistants" / "geography-tutor.yaml"
    spec.write_text(spec.read_text().replace("knows the largest", "does not forget the largest"))
    test_id = "geography-tutor::does not forget the largest ocean"
    (examples / "tapes").mkdir()
    missed = kit(examples, "--ephemeral", test_id, "--replay", "tapes")
    assert missed.returncode == 1, missed.stdout + missed.stderr
    advice = f"record it again with: kit test --record tapes '{test_id}'"
    assert advice in missed.stdout
    recorded = kit(examples, "--ephemeral", "--record", "tapes", test_id)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert recorded.stdout.splitlines()[0].split()[:2] == ["PASS", "geography-tutor::does"]
    assert "1 test: 1 passed" in recorded.stdout
    again = kit(examples, "--ephemeral", test_id, "--replay", "tapes")
    assert again.returncode == 0, again.stdout + again.stderr


def test_exitfirst_stops_and_the_html_report_is_one_self_contained_file(examples: Path) -> None:
    spec = examples / "assistants" / "art-maestro.yaml"
    spec.write_text(spec.read_text().replace('icontains: "I cannot"', 'icontains: "Here is"'))
    done = kit(examples, "--ephemeral", "-x", "--html", "out/report.html")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["FAIL", "art-maestro::draws"]
    assert lines[-3:-1] == [
        lines[-3],
        f"Stopped after the first failure (-x): {EXAMPLES_RUN} not run.",
    ]
    assert lines[-3].startswith(
        f"1 test: 0 passed, 1 failed, 0 errors, 0 skipped, {EXAMPLES_RUN} not run in "
    )
    assert lines[-1] == "Wrote out/report.html"
    page = (examples / "out" / "report.html").read_text(encoding="utf-8")
    # self-contained: nothing is fetched from anywhere when the file is opened
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", page)
    assert not re.search(r"url\(|@import|https?://", page)
    for shown in (
        "art-maestro::draws a ragdoll cat",
        "Please help me draw a picture of a ragdoll cat.",  # the user's turn
        "text_to_image",  # the tool call
        "a ragdoll cat",  # its arguments
        "not: icontains: &#39;Here is&#39;",  # the failed expectation
        "FAIL",
    ):
        assert shown in page, shown
    assert re.search(r"turn 1 · \d+ ms", page)  # timings


def test_on_a_terminal_a_live_bar_counts_and_ticks_and_results_print_as_they_finish(
    examples: Path,
) -> None:
    import os
    import pty

    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="120")
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant_kit", "test", "--ephemeral", "-j", "2"],
        cwd=examples,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=120) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert re.search(r"\[0/10\]", plain) and re.search(r"\[10/10\]|\[9/10\]", plain)  # the bar
    assert re.search(r"\d:\d\d:\d\d", plain)  # its timer
    assert "\x1b[32mPASS" in screen  # results in colour, each on its own line
    assert re.search(r"PASS +art-maestro::knows a capital +1/1 +\d+\.\d\ds\r?\n", plain)
    assert "  [1/10]" not in plain  # the counter is the bar's on a terminal
    assert re.search(r"10 tests: 9 passed, 0 failed, 0 errors, 1 skipped in ", plain)
