"""The HTML report: one self-contained file, rendered from a Jinja2 template (autoescaped).

Failures and errors come first, then flaky tests, passes and skips; buttons and a search box
(a small inline script, nothing fetched) filter the list. Each test shows its verdict, passes k/n
and time; opening it shows every repetition as a transcript: user and assistant messages, tool
calls with their arguments and outputs, the mock that answered, each check with its verdict and
message, and timings and token usage per turn. The template is
``assistant_kit/testing/templates/report.html.j2``.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from importlib import resources

import jinja2

from assistant_kit.testing.records import (
    RepetitionResult,
    SuiteResult,
    TestResult,
    ToolCallRecord,
    Verdict,
)
from assistant_kit.testing.report import passes_text, prepare, seconds, totals_line
from assistant_kit.testing.secrets import Scrubber

__all__ = ["render_html"]

_VERDICT_CLASS = {
    Verdict.PASS: "pass",
    Verdict.FAIL: "fail",
    Verdict.ERROR: "error",
    Verdict.SKIP: "skip",
}
_MARK = {"passed": "✓", "failed": "✗", "error": "!"}
#: Display order: what needs attention first.
_ORDER = {Verdict.ERROR: 0, Verdict.FAIL: 0, Verdict.PASS: 2, Verdict.SKIP: 3}


@functools.cache
def _template() -> jinja2.Template:
    source = (resources.files("assistant_kit.testing") / "templates" / "report.html.j2").read_text(
        encoding="utf-8"
    )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(source)


def _anchor(test: TestResult) -> str:
    return "t-" + "".join(c if c.isalnum() else "-" for c in test.test_id)


def _arguments(call: ToolCallRecord) -> str:
    if call.arguments_ok:
        return json.dumps(call.arguments, ensure_ascii=False, indent=2)
    return call.raw_arguments


def _mocks_used(rep: RepetitionResult) -> list[tuple[str, int]]:
    used = Counter(c.mock for t in rep.turns for c in t.turn.tool_calls if c.mock)
    return sorted(used.items())


def _rank(test: TestResult) -> int:
    return 1 if test.flaky and test.verdict is Verdict.PASS else _ORDER[test.verdict]


def render_html(suite: SuiteResult, *, scrubber: Scrubber | None = None) -> str:
    """The whole report as one HTML document."""
    suite = prepare(suite, scrubber)
    tests = sorted(suite.tests, key=_rank)  # stable: spec order within each group
    bad = sum(t.verdict in (Verdict.FAIL, Verdict.ERROR) for t in tests)
    filters = [
        (key, label, n)
        for key, label, n in (
            ("bad", "failed", bad),
            ("flaky", "flaky", len(suite.flaky)),
            ("pass", "passed", suite.count(Verdict.PASS)),
            ("skip", "skipped", suite.count(Verdict.SKIP)),
        )
        if n
    ]
    meta = [
        x
        for x in (
            f"target {suite.target}" if suite.target else "",
            suite.started_at,
            totals_line(suite),
        )
        if x
    ]
    doc = _template().render(
        tests=tests,
        filters=filters,
        meta=meta,
        verdict_class=_VERDICT_CLASS,
        marks=_MARK,
        anchor=_anchor,
        arguments=_arguments,
        mocks_used=_mocks_used,
        passes=passes_text,
        seconds=seconds,
    )
    return scrubber.text(doc) if scrubber else doc
