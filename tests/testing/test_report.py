"""Reports: text summary, JUnit XML, JSON, self-contained HTML, and no secret in any of them."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from kit_testing_samples import sample_suite

from assistant_kit.testing.html_report import render_html
from assistant_kit.testing.report import (
    render_json,
    render_junit,
    render_text,
    suite_to_dict,
    write_reports,
)
from assistant_kit.testing.secrets import Scrubber

SENTINEL = "sk-SENTINEL-7f3a9c1e5b"
# A secret with characters every format escapes differently.
AWKWARD = 'p&ss"<word>\\7f3a9c'


def test_text_summary_has_a_line_per_test_a_flaky_line_and_totals():
    text = render_text(sample_suite())
    lines = text.splitlines()
    assert re.match(r"PASS   billing-bot::looks up an order +1/1 +0\.90s$", lines[0])
    assert re.match(r"FAIL   billing-bot::refunds a charge +0/1 +0\.45s$", lines[1])
    assert re.match(r"PASS   art-maestro::greets +2/3 +0\.36s  \(min_pass 2\)$", lines[2])
    assert re.match(r"SKIP   art-maestro::draws a cat +- +0\.00s  \(needs a GPU\)$", lines[3])
    assert "FLAKY  art-maestro::greets: 2/3 passed (min_pass 2, pass)" in lines
    assert lines[-1] == "4 tests: 2 passed, 1 failed, 0 errors, 1 skipped; 1 flaky in 2.05s"


def test_text_summary_details_failures_with_the_transcript():
    text = render_text(sample_suite())
    assert "FAIL billing-bot::refunds a charge\n  turn 1: failed: not_contains: 'stored'" in text
    assert "    turn 1 (300 ms)" in text
    assert (
        '      tool: charge({"token": "nothing-secret-here"}) -> {"error": "card declined"}' in text
    )
    assert "      ✗ not_contains: 'stored': expected the reply not to contain" in text
    assert "      ✓ judge: 'polite'" in text


def test_junit_parses_and_carries_failures_with_messages():
    root = ET.fromstring(render_junit(sample_suite()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "4",
        "1",
        "0",
        "1",
    )
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"billing-bot", "art-maestro"}
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["looks up an order"].get("classname") == "billing-bot"
    assert cases["looks up an order"].get("file") == "assistants/billing-bot.yaml"
    assert cases["looks up an order"].find("failure") is None
    failure = cases["refunds a charge"].find("failure")
    assert failure is not None
    assert "expected the reply not to contain 'stored'" in failure.get("message")
    assert "user: My key is" in failure.text
    assert cases["draws a cat"].find("skipped").get("message") == "needs a GPU"
    flaky = {p.get("name"): p.get("value") for p in cases["greets"].iter("property")}
    assert flaky["flaky"] == "true"
    assert flaky["passes"] == "2/3"


def test_junit_survives_control_characters():
    suite = sample_suite(secret="bell\x07and\x00nul")
    root = ET.fromstring(render_junit(suite))
    # the characters XML forbids are replaced, the text around them is kept
    texts = [t for element in root.iter() for t in (element.text, *element.attrib.values()) if t]
    assert any("bell\ufffdand\ufffdnul" in t for t in texts)
    assert not any("\x07" in t or "\x00" in t for t in texts)


def test_json_report_is_versioned_and_complete():
    data = json.loads(render_json(sample_suite()))
    assert data["format"] == "kit-test-report"
    assert data["version"] == 1
    assert data["summary"] == {
        "tests": 4,
        "passed": 2,
        "failed": 1,
        "errors": 0,
        "skipped": 1,
        "flaky": 1,
        "deselected": 0,
        "not_run": 0,
        "interrupted": False,
        "ok": False,
    }
    first = data["tests"][0]
    assert first["verdict"] == "pass"
    call = first["repetitions"][0]["turns"][0]["turn"]["tool_calls"][0]
    assert call["arguments"] == {"id": 42}
    assert call["mock"] == "test:get_order.returns"
    assert data["tests"][2]["flaky"] is True
    assert data == suite_to_dict(sample_suite())


def _order(doc: str) -> list[str]:
    """The test ids of the summary table, in the order the report shows them."""
    return re.findall(r'<tr data-verdict="[^"]+"[^>]*><td>.*?<a href="#[^"]+">([^<]+)</a>', doc)


def test_html_lists_failures_first_then_flaky_passes_and_skips():
    doc = render_html(sample_suite())
    assert _order(doc) == [
        "billing-bot::refunds a charge",
        "art-maestro::greets",
        "billing-bot::looks up an order",
        "art-maestro::draws a cat",
    ]
    details = re.findall(r'<details class="test" id="[^"]+" data-verdict="(\w+)"', doc)
    assert details == ["fail", "pass", "pass", "skip"]
    # the filters: one button per kind present, with its count, and a search box
    buttons = re.findall(r'<button type="button" data-show="(\w+)"[^>]*>([^<]+)</button>', doc)
    assert buttons == [
        ("all", "all 4"),
        ("bad", "failed 1"),
        ("flaky", "flaky 1"),
        ("pass", "passed 2"),
        ("skip", "skipped 1"),
    ]
    assert '<input type="search" id="find"' in doc


def test_html_escapes_a_script_in_a_transcript():
    from assistant_kit.testing.records import SuiteResult, ToolCallRecord, TurnRecord, TurnResult
    from assistant_kit.testing.verdicts import make_repetition, make_test_result

    attack = '<script>alert("x")</script>'
    turn = TurnRecord(
        index=0,
        user=attack,
        reply=f"{attack}</pre></div>",
        tool_calls=(ToolCallRecord.function("c", f"f{attack}", '{"a": 1}', output=attack),),
    )
    rep = make_repetition(0, [TurnResult(turn)], error=attack)
    suite = SuiteResult((make_test_result(f"bot::{attack}", [rep], tags=[attack]),))
    doc = render_html(suite)
    parser = _Collector()
    parser.feed(doc)
    assert [t for t, _ in parser.tags].count("script") == 1  # only the report's own
    assert "alert" not in doc.split("<script>")[1]  # ... which is not the attacker's
    assert doc.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 6
    assert attack in "".join(parser.text)  # shown as text


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_one_self_contained_file_with_the_transcripts():
    doc = render_html(sample_suite())
    parser = _Collector()
    parser.feed(doc)
    tags = [t for t, _ in parser.tags]
    assert "style" in tags
    assert tags.count("script") == 1  # the inline filter script, nothing loaded
    assert "link" not in tags and "img" not in tags
    for _tag, attrs in parser.tags:
        assert "src" not in attrs, attrs
        assert not attrs.get("href", "#").startswith(("http", "//")), attrs
    text = "".join(parser.text)
    # the transcript: user, tool call with mock, assistant reply (escaped), checks, timings
    assert "Where is order 42?" in text
    assert "Your order 42 has shipped <b>today</b> & will arrive soon." in text
    assert "&lt;b&gt;today&lt;/b&gt; &amp; will" in doc
    assert "get_order" in text and "mock test:get_order.returns" in text
    assert "mocks used: test:get_order.returns ×1" in text
    assert "built-in quark_search" in text
    assert "error output" in text
    assert "812 ms" in text and "100 prompt + 20 completion tokens" in text
    assert "expected the reply not to contain 'stored'" in text
    assert "judge verdict: True" in text
    assert "FLAKY" in text and "repetition 3" in text
    assert "skipped: needs a GPU" in text


@pytest.mark.parametrize("secret", [SENTINEL, AWKWARD], ids=["sentinel", "awkward"])
def test_no_report_contains_the_secret(tmp_path, secret):
    suite = sample_suite(secret=secret)
    scrubber = Scrubber([secret])
    paths = write_reports(
        suite,
        junit=tmp_path / "out" / "junit.xml",
        json_path=tmp_path / "out" / "report.json",
        html=tmp_path / "out" / "report.html",
        scrubber=scrubber,
    )
    outputs = {p.name: p.read_text(encoding="utf-8") for p in paths}
    outputs["text"] = render_text(suite, scrubber=scrubber)
    forms = {secret, json.dumps(secret)[1:-1], html.escape(secret), "7f3a9c"}
    for name, content in outputs.items():
        for form in forms:
            assert form not in content, (name, form)
        assert "[REDACTED]" in content, name
    # the reports still parse
    ET.fromstring(outputs["junit.xml"])
    json.loads(outputs["report.json"])


def test_authorization_headers_are_scrubbed_even_without_configured_secrets():
    suite = sample_suite(secret="abc123-token-value")
    for text in (render_json(suite, scrubber=Scrubber()), render_html(suite, scrubber=Scrubber())):
        assert "Authorization: Bearer [REDACTED]" in text
        assert "Bearer abc123" not in text


def test_html_shows_unparsable_arguments_and_setup_errors():
    from assistant_kit.testing.records import SuiteResult, ToolCallRecord, TurnRecord, TurnResult
    from assistant_kit.testing.verdicts import make_repetition, make_test_result

    turn = TurnRecord(index=0, user="hi", tool_calls=(ToolCallRecord.function("c", "f", "{oops"),))
    reps = [
        make_repetition(0, [TurnResult(turn)]),
        make_repetition(1, [], error="could not create a thread: 503"),
    ]
    suite = SuiteResult((make_test_result("bot::t", reps, repeat=2, min_pass=1),))
    doc = render_html(suite)
    assert "arguments are not JSON" in doc and "{oops" in doc
    assert "error: could not create a thread: 503" in doc
    text = render_text(suite)
    assert text.startswith("PASS   bot::t    1/2    0.00s  (min_pass 1)\n")
    assert "FLAKY  bot::t: 1/2 passed (min_pass 1, pass)" in text


_FAKE_DOM = """
const els = JSON.parse(process.argv[1]);  // [{tag, attrs, text}]
function el(o) {
  const listeners = {};
  return {
    attrs: o.attrs, textContent: o.text, hidden: false, tag: o.tag, listeners,
    getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; },
    hasAttribute(n) { return n in this.attrs; },
    addEventListener(k, f) { listeners[k] = f; },
    classList: { toggle() {} },
  };
}
const all = els.map(el);
const find = el({tag: "input", attrs: {}, text: ""}); find.value = "";
globalThis.document = {
  getElementById: () => find,
  querySelectorAll(sel) {
    if (sel === "#filters button") return all.filter(e => e.tag === "button");
    return all.filter(e => e.tag !== "button" && "data-verdict" in e.attrs);
  },
};
eval(process.argv[2]);
const rows = all.filter(e => e.tag === "tr" && "data-verdict" in e.attrs);
const shown = () => rows.filter(e => !e.hidden).map(e => e.textContent);
const out = {};
for (const b of all.filter(e => e.tag === "button")) {
  b.listeners.click(); out[b.attrs["data-show"]] = shown();
}
all.filter(e => e.tag === "button")[0].listeners.click();
find.value = "SMOKE"; find.listeners.input(); out["search"] = shown();
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_the_html_filters_show_what_their_buttons_and_the_search_box_say():
    doc = render_html(sample_suite())
    script = doc.split("<script>")[1].split("</script>")[0]
    elements = []
    for tag, attrs, text in re.findall(
        r"<(tr|details|button)\b([^>]*)>(.*?)</\1>", doc, flags=re.S
    ):
        parsed = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        parsed.update({name: "" for name in re.findall(r"\s([\w-]+)(?=\s|$)", attrs)})
        elements.append({"tag": tag, "attrs": parsed, "text": re.sub(r"<[^>]+>", "", text)})
    done = subprocess.run(
        ["node", "-e", _FAKE_DOM, json.dumps(elements), script],
        capture_output=True,
        text=True,
        check=True,
    )
    ids = {key: [next(i for i in IDS if i in row) for row in rows]
           for key, rows in json.loads(done.stdout).items()}  # fmt: skip
    assert ids["all"] == IDS
    assert ids["bad"] == ["billing-bot::refunds a charge"]
    assert ids["flaky"] == ["art-maestro::greets"]
    assert ids["pass"] == ["art-maestro::greets", "billing-bot::looks up an order"]
    assert ids["skip"] == ["art-maestro::draws a cat"]
    assert ids["search"] == ["billing-bot::looks up an order"]  # by its tag, any case


IDS = [
    "billing-bot::refunds a charge",
    "art-maestro::greets",
    "billing-bot::looks up an order",
    "art-maestro::draws a cat",
]
