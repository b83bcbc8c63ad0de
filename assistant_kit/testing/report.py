"""Reports of a ``SuiteResult``: a text summary, JUnit XML, JSON (and HTML in ``html_report``).

Every writer takes an optional ``Scrubber`` and applies it to the records before rendering and to
the rendered text after, so a secret value cannot reach a report by any path::

    scrubber = Scrubber.from_env(secret_env_names(kit_yaml))
    print(render_text(suite, scrubber=scrubber))
    write_reports(suite, junit="junit.xml", json_path="report.json", html="report.html",
                  scrubber=scrubber)
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from assistant_kit.testing.records import (
    RepetitionResult,
    SuiteResult,
    TestResult,
    Verdict,
)
from assistant_kit.testing.secrets import Scrubber

JSON_FORMAT = "kit-test-report"
JSON_VERSION = 1

_LABEL = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.ERROR: "ERROR", Verdict.SKIP: "SKIP"}
_MARK = {"passed": "✓", "failed": "✗", "error": "!"}


def prepare(suite: SuiteResult, scrubber: Scrubber | None) -> SuiteResult:
    """The suite with every string scrubbed (or as it is without a scrubber)."""
    return scrubber.data(suite) if scrubber else suite


def _finish(text: str, scrubber: Scrubber | None) -> str:
    return scrubber.text(text) if scrubber else text


def seconds(ms: float) -> str:
    return f"{ms / 1000:.2f}s"


def passes_text(test: TestResult) -> str:
    if test.verdict is Verdict.SKIP:
        return "-"
    return f"{test.passes}/{len(test.repetitions) or test.repeat}"


def totals_line(suite: SuiteResult) -> str:
    """``5 tests: 3 passed, 1 failed, 1 error, 0 skipped; 1 flaky in 4.20s``."""
    n = len(suite.tests)
    parts = [
        f"{suite.count(Verdict.PASS)} passed",
        f"{suite.count(Verdict.FAIL)} failed",
        f"{suite.count(Verdict.ERROR)} error{'s' if suite.count(Verdict.ERROR) != 1 else ''}",
        f"{suite.count(Verdict.SKIP)} skipped",
    ]
    if suite.deselected:
        parts.append(f"{suite.deselected} deselected")
    if suite.not_run:
        parts.append(f"{suite.not_run} not run")
    flaky = f"; {len(suite.flaky)} flaky" if suite.flaky else ""
    took = seconds(suite.duration_ms)
    return f"{n} test{'s' if n != 1 else ''}: {', '.join(parts)}{flaky} in {took}"


def format_repetition(rep: RepetitionResult, indent: str = "  ") -> list[str]:
    """A repetition as transcript lines, each check marked ✓ ✗ or !."""
    lines = [f"{indent}error: {rep.error}"] if rep.error else []
    for result in rep.turns:
        turn = result.turn
        lines.append(f"{indent}turn {turn.index + 1} ({turn.latency_ms:.0f} ms)")
        lines.append(f"{indent}  user: {turn.user}")
        for call in turn.tool_calls:
            tag = (
                f" [mock {call.mock}]"
                if call.mock
                else " [built-in]"
                if call.kind == "builtin"
                else ""
            )
            out = "" if call.output is None else f" -> {call.output}"
            lines.append(f"{indent}  tool: {call.signature()}{out}{tag}")
        lines.append(f"{indent}  assistant: {turn.reply}")
        lines.extend(f"{indent}  error: {e}" for e in turn.errors)
        for check in result.checks:
            mark = _MARK[check.status.value]
            text = check.check if check.passed else f"{check.check}: {check.message}"
            lines.append(f"{indent}  {mark} {text}")
    return lines


def result_line(test: TestResult, width: int = 0) -> str:
    """``PASS   order-desk::cancels    1/1    1.20s``: one test's verdict, passes and time."""
    extra = ""
    if test.verdict is Verdict.SKIP:
        extra = f"  ({test.skip_reason})" if test.skip_reason else ""
    elif test.repeat > 1:
        extra = f"  (min_pass {test.min_pass})"
    return (
        f"{_LABEL[test.verdict]:<6} {test.test_id:<{width}}  {passes_text(test):>5}  "
        f"{seconds(test.duration_ms):>7}{extra}".rstrip()
    )


def render_text(
    suite: SuiteResult,
    *,
    scrubber: Scrubber | None = None,
    transcripts: bool = True,
    listing: bool = True,
) -> str:
    """The summary ``kit test`` prints: one line per test (unless ``listing=False``: they were
    shown as they finished), then details of what did not pass (with the transcript of the first
    repetition that did not), the flaky tests, the totals."""
    suite = prepare(suite, scrubber)
    width = max((len(t.test_id) for t in suite.tests), default=10)
    lines = [result_line(test, width) for test in suite.tests] if listing else []
    bad = [t for t in suite.tests if t.verdict in (Verdict.FAIL, Verdict.ERROR)]
    for test in bad:
        if lines:
            lines.append("")
        lines.append(f"{_LABEL[test.verdict]} {test.test_id}")
        lines.extend(f"  {p}" for p in test.problems())
        if transcripts:
            first = next((r for r in test.repetitions if r.verdict is not Verdict.PASS), None)
            if first is not None:
                lines.append(f"  transcript (repetition {first.index + 1}):")
                lines.extend(format_repetition(first, indent="    "))
    if suite.flaky:
        if lines:
            lines.append("")
        lines.extend(
            f"FLAKY  {t.test_id}: {t.passes}/{len(t.repetitions)} passed "
            f"(min_pass {t.min_pass}, {t.verdict.value})"
            for t in suite.flaky
        )
    if lines:
        lines.append("")
    lines.append(totals_line(suite))
    return _finish("\n".join(lines) + "\n", scrubber)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def suite_to_dict(suite: SuiteResult) -> dict[str, Any]:
    """The JSON report's content: a versioned envelope, a summary, and every record."""
    tests = []
    for test in suite.tests:
        data = _plain(test)
        data.update(passes=test.passes, flaky=test.flaky)
        tests.append(data)
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "target": suite.target,
        "started_at": suite.started_at,
        "duration_ms": suite.duration_ms,
        "summary": {
            "tests": len(suite.tests),
            "passed": suite.count(Verdict.PASS),
            "failed": suite.count(Verdict.FAIL),
            "errors": suite.count(Verdict.ERROR),
            "skipped": suite.count(Verdict.SKIP),
            "flaky": len(suite.flaky),
            "deselected": suite.deselected,
            "not_run": suite.not_run,
            "interrupted": suite.interrupted,
            "ok": suite.ok,
        },
        "tests": tests,
    }


def render_json(suite: SuiteResult, *, scrubber: Scrubber | None = None) -> str:
    data = suite_to_dict(prepare(suite, scrubber))
    return _finish(json.dumps(data, ensure_ascii=False, indent=2) + "\n", scrubber)


# XML 1.0 forbids most control characters even when escaped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", text)


def render_junit(suite: SuiteResult, *, scrubber: Scrubber | None = None) -> str:
    """JUnit XML: one ``testsuite`` per assistant, one ``testcase`` per test (classname = the
    assistant, name = the test); a FAIL carries ``<failure>``, an ERROR ``<error>``, each with
    every problem as its message and the transcript as its text."""
    suite = prepare(suite, scrubber)
    root = ET.Element("testsuites", name="kit test")
    _counts(root, suite.tests, suite.duration_ms)
    by_assistant: dict[str, list[TestResult]] = {}
    for test in suite.tests:
        by_assistant.setdefault(test.assistant, []).append(test)
    for assistant, tests in by_assistant.items():
        node = ET.SubElement(root, "testsuite", name=_xml(assistant))
        _counts(node, tests, sum(t.duration_ms for t in tests))
        if suite.started_at:
            node.set("timestamp", suite.started_at)
        for test in tests:
            _testcase(node, test)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return _finish('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n", scrubber)


def _counts(node: ET.Element, tests: list[TestResult] | tuple[TestResult, ...], ms: float) -> None:
    node.set("tests", str(len(tests)))
    node.set("failures", str(sum(t.verdict is Verdict.FAIL for t in tests)))
    node.set("errors", str(sum(t.verdict is Verdict.ERROR for t in tests)))
    node.set("skipped", str(sum(t.verdict is Verdict.SKIP for t in tests)))
    node.set("time", f"{ms / 1000:.3f}")


def _testcase(parent: ET.Element, test: TestResult) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        classname=_xml(test.assistant),
        name=_xml(test.name),
        time=f"{test.duration_ms / 1000:.3f}",
    )
    if test.file:
        case.set("file", _xml(test.file))
    if test.line is not None:
        case.set("line", str(test.line))
    props = ET.SubElement(case, "properties")
    for name, value in (
        ("passes", passes_text(test)),
        ("min_pass", str(test.min_pass)),
        ("flaky", "true" if test.flaky else "false"),
        ("tags", ",".join(test.tags)),
    ):
        ET.SubElement(props, "property", name=name, value=_xml(value))
    transcript = [
        line
        for rep in test.repetitions
        for line in [f"repetition {rep.index + 1}: {rep.verdict.value}", *format_repetition(rep)]
    ]
    if test.verdict is Verdict.SKIP:
        ET.SubElement(case, "skipped", message=_xml(test.skip_reason or "skipped"))
    elif test.verdict in (Verdict.FAIL, Verdict.ERROR):
        problems = test.problems()
        tag = "failure" if test.verdict is Verdict.FAIL else "error"
        node = ET.SubElement(
            case, tag, message=_xml("; ".join(problems[:3]) or tag), type=test.verdict.value
        )
        node.text = _xml("\n".join([*problems, "", *transcript]))
    if transcript:
        ET.SubElement(case, "system-out").text = _xml("\n".join(transcript))


def write_reports(
    suite: SuiteResult,
    *,
    junit: str | Path | None = None,
    json_path: str | Path | None = None,
    html: str | Path | None = None,
    scrubber: Scrubber | None = None,
) -> list[Path]:
    """Write the requested report files (parents created); returns their paths."""
    from assistant_kit.testing.html_report import render_html

    written = []
    for path, render in (
        (junit, render_junit),
        (json_path, render_json),
        (html, render_html),
    ):
        if path is None:
            continue
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(suite, scrubber=scrubber), encoding="utf-8")
        written.append(target)
    return written
