"""The HTML report: one self-contained file (inline CSS, no scripts, no external assets).

Each test shows its verdict, passes k/n and time; opening it shows every repetition as a transcript:
user and assistant messages, tool calls with their arguments and outputs, the mock that answered,
each check with its verdict and message, and timings and token usage per turn.
"""

from __future__ import annotations

import json
from collections import Counter
from html import escape

from assistant_kit.testing.records import (
    CheckResult,
    RepetitionResult,
    SuiteResult,
    TestResult,
    ToolCallRecord,
    TurnResult,
    Verdict,
)
from assistant_kit.testing.report import passes_text, prepare, seconds, totals_line
from assistant_kit.testing.secrets import Scrubber

_CSS = """
:root{--pass:#1a7f37;--fail:#cf222e;--error:#9a6700;--skip:#6e7781;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;
padding:24px;color:#1f2328}
h1{font-size:22px;margin:0 0 4px}
.meta{color:#59636e;margin-bottom:16px}
table.summary{border-collapse:collapse;width:100%;margin:12px 0 24px}
table.summary td,table.summary th{border-bottom:1px solid var(--line);padding:4px 8px;
text-align:left}
.badge{display:inline-block;min-width:52px;text-align:center;border-radius:10px;padding:0 8px;
color:#fff;font-size:12px;font-weight:600}
.pass{background:var(--pass)}.fail{background:var(--fail)}.error{background:var(--error)}
.skip{background:var(--skip)}.flaky{background:#8250df}
details.test{border:1px solid var(--line);border-radius:6px;margin:10px 0}
details.test>summary{cursor:pointer;padding:8px 12px;background:var(--soft);list-style:none}
details.test>summary::-webkit-details-marker{display:none}
.rep{padding:8px 16px;border-top:1px solid var(--line)}
.rep h3{font-size:14px;margin:6px 0}
.turn{margin:10px 0 16px}
.msg{border-radius:8px;padding:8px 12px;margin:6px 0;white-space:pre-wrap;word-break:break-word}
.user{background:#ddf4ff;margin-right:15%}
.assistant{background:var(--soft);margin-left:15%}
.who{font-size:11px;font-weight:600;color:#59636e;text-transform:uppercase;display:block}
.tool{border:1px dashed var(--line);border-radius:6px;padding:6px 10px;margin:6px 8%;font-size:13px}
.tool pre{margin:4px 0;background:var(--soft);padding:4px 6px;white-space:pre-wrap;
word-break:break-word}
.tag{font-size:11px;border:1px solid var(--line);border-radius:8px;padding:0 6px;margin-left:6px}
.tag.err{border-color:var(--fail);color:var(--fail)}
ul.checks{list-style:none;padding-left:0;margin:6px 0}
ul.checks li{padding:2px 0}
.c-passed{color:var(--pass)}.c-failed{color:var(--fail)}.c-error{color:var(--error)}
.timing{color:#59636e;font-size:12px}
.problem{color:var(--fail);white-space:pre-wrap}
"""

_VERDICT_CLASS = {
    Verdict.PASS: "pass",
    Verdict.FAIL: "fail",
    Verdict.ERROR: "error",
    Verdict.SKIP: "skip",
}
_FLAKY = ' <span class="badge flaky">FLAKY</span>'
_MARK = {"passed": "✓", "failed": "✗", "error": "!"}


def _badge(verdict: Verdict) -> str:
    return f'<span class="badge {_VERDICT_CLASS[verdict]}">{verdict.value.upper()}</span>'


def _anchor(test: TestResult) -> str:
    return "t-" + "".join(c if c.isalnum() else "-" for c in test.test_id)


def _tool(call: ToolCallRecord) -> str:
    tags = []
    if call.kind == "builtin":
        tags.append(f'<span class="tag">built-in {escape(call.type)}</span>')
    if call.mock:
        tags.append(f'<span class="tag">mock {escape(call.mock)}</span>')
    if call.is_error:
        tags.append('<span class="tag err">error output</span>')
    if call.arguments_ok:
        args = json.dumps(call.arguments, ensure_ascii=False, indent=2)
    else:
        args = call.raw_arguments
        tags.append('<span class="tag err">arguments are not JSON</span>')
    output = (
        "<pre>(no output)</pre>" if call.output is None else f"<pre>{escape(call.output)}</pre>"
    )
    return (
        f'<div class="tool"><b>tool call</b> <code>{escape(call.name)}</code>{"".join(tags)}'
        f"<div>arguments</div><pre>{escape(args)}</pre><div>output</div>{output}</div>"
    )


def _check(check: CheckResult) -> str:
    status = check.status.value
    detail = ""
    if "reason" in check.detail:
        verdict = check.detail.get("verdict")
        detail = (
            f' <span class="timing">(judge verdict: {escape(str(verdict))}; reason: '
            f"{escape(str(check.detail['reason']))})</span>"
        )
    message = "" if check.passed else f" — {escape(check.message)}"
    return (
        f'<li class="c-{status}">{_MARK[status]} <b>{escape(check.check)}</b>{message}{detail}</li>'
    )


def _turn(result: TurnResult) -> str:
    turn = result.turn
    parts = [
        f'<div class="turn"><div class="timing">turn {turn.index + 1} · {turn.latency_ms:.0f} ms',
    ]
    if turn.usage is not None:
        parts.append(
            f" · {turn.usage.prompt_tokens} prompt + {turn.usage.completion_tokens} "
            "completion tokens"
        )
    if turn.run_ids:
        parts.append(f" · runs {escape(', '.join(turn.run_ids))}")
    parts.append(f" · {escape(turn.status)}</div>")
    parts.append(f'<div class="msg user"><span class="who">user</span>{escape(turn.user)}</div>')
    parts.extend(_tool(call) for call in turn.tool_calls)
    parts.append(
        f'<div class="msg assistant"><span class="who">assistant</span>{escape(turn.reply)}</div>'
    )
    parts.extend(f'<div class="problem">error: {escape(e)}</div>' for e in turn.errors)
    if result.checks:
        parts.append('<ul class="checks">' + "".join(_check(c) for c in result.checks) + "</ul>")
    parts.append("</div>")
    return "".join(parts)


def _repetition(rep: RepetitionResult, many: bool) -> str:
    title = f"repetition {rep.index + 1}" if many else "conversation"
    thread = f" · thread {escape(rep.thread_id)}" if rep.thread_id else ""
    parts = [
        f'<div class="rep"><h3>{_badge(rep.verdict)} {title} '
        f'<span class="timing">{seconds(rep.duration_ms)}{thread}</span></h3>'
    ]
    if rep.error:
        parts.append(f'<div class="problem">error: {escape(rep.error)}</div>')
    used = Counter(c.mock for t in rep.turns for c in t.turn.tool_calls if c.mock)
    if used:
        shown = ", ".join(f"{escape(m)} ×{n}" for m, n in sorted(used.items()))
        parts.append(f'<div class="timing">mocks used: {shown}</div>')
    parts.extend(_turn(t) for t in rep.turns)
    parts.append("</div>")
    return "".join(parts)


def _test(test: TestResult) -> str:
    opened = " open" if test.verdict in (Verdict.FAIL, Verdict.ERROR) or test.flaky else ""
    flaky = _FLAKY if test.flaky else ""
    where = f" · {escape(test.file)}:{test.line}" if test.file and test.line else ""
    tags = "".join(f'<span class="tag">{escape(t)}</span>' for t in test.tags)
    head = (
        f"<summary>{_badge(test.verdict)}{flaky} <b>{escape(test.test_id)}</b>{tags} "
        f'<span class="timing">passes {passes_text(test)} (min_pass {test.min_pass}) · '
        f"{seconds(test.duration_ms)}{where}</span></summary>"
    )
    body = []
    if test.skip_reason:
        body.append(f'<div class="rep">skipped: {escape(test.skip_reason)}</div>')
    many = len(test.repetitions) > 1
    body.extend(_repetition(rep, many) for rep in test.repetitions)
    return f'<details class="test" id="{_anchor(test)}"{opened}>{head}{"".join(body)}</details>'


def render_html(suite: SuiteResult, *, scrubber: Scrubber | None = None) -> str:
    """The whole report as one HTML document."""
    suite = prepare(suite, scrubber)
    rows = "".join(
        f"<tr><td>{_badge(t.verdict)}{_FLAKY if t.flaky else ''}</td>"
        f'<td><a href="#{_anchor(t)}">{escape(t.test_id)}</a></td>'
        f"<td>{passes_text(t)}</td><td>{seconds(t.duration_ms)}</td></tr>"
        for t in suite.tests
    )
    meta = " · ".join(
        x
        for x in (
            f"target {escape(suite.target)}" if suite.target else "",
            escape(suite.started_at),
            escape(totals_line(suite)),
        )
        if x
    )
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>kit test report</title><style>{_CSS}</style></head><body>"
        f'<h1>kit test</h1><div class="meta">{meta}</div>'
        '<table class="summary"><thead><tr><th>verdict</th><th>test</th><th>passes</th>'
        f"<th>time</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{''.join(_test(t) for t in suite.tests)}</body></html>\n"
    )
    return scrubber.text(doc) if scrubber else doc
