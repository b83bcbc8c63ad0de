"""Fuzzing the spec layer: random YAML text, bytes and structures through the real loader.

The contract under test: whatever a spec file or kit.yaml holds, ``load_project()`` either
returns a project whose specs give payloads in both dialects, or raises the kit's own
``SpecError`` (every issue at a real ``file:line:col``) or ``ConfigError``. Nothing else escapes:
no ``KeyError``, ``TypeError``, ``RecursionError`` or PyYAML exception.

The strategies and ``SpecCase.check`` are shared by ``test_fuzz_spec.py`` (a few hundred cases in
CI) and ``bench/fuzz.py`` (tens of thousands).
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from assistant_kit.errors import ConfigError, SpecError
from assistant_kit.spec.load import parse_yaml
from assistant_kit.spec.project import load_project

#: Line breaks as YAML counts them.
_YAML_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
#: ``file:line:col: message`` as every spec issue must print.
ISSUE_LINE = re.compile(r"^(?P<file>[^\n]+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): \S")

# -- the vocabulary random structures are made of ---------------------------------------------

SPEC_KEYS = [
    "name",
    "display_name",
    "model",
    "description",
    "instructions",
    "tools",
    "settings",
    "metadata",
    "vars",
    "tests",
]
INNER_KEYS = [
    "type",
    "name",
    "id",
    "description",
    "parameters",
    "properties",
    "required",
    "auth",
    "env",
    "header",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "turns",
    "user",
    "expect",
    "mocks",
    "returns",
    "sequence",
    "error",
    "when",
    "args",
    "default",
    "regex",
    "schema",
    "not",
    "contains",
    "tool_called",
    "tool_sequence",
    "calls",
    "order",
    "no_tool_called",
    "json",
    "judge",
    "rubric",
    "python",
    "repeat",
    "min_pass",
    "skip",
    "tags",
    "timeout",
    "args_exact",
    "args_schema",
    "count",
    "max_latency_ms",
    "one_of",
    "equals",
    "items",
    "enum",
    "$ref",
    "<<",
]
KIT_KEYS = ["specs", "partials", "vars", "default_target", "targets", "server", "test"]
KIT_INNER_KEYS = [
    "provider",
    "base_url",
    "api_key_env",
    "dialect",
    "vars",
    "env",
    "models",
    "backend",
    "script",
    "delay_ms",
    "tools",
    "plugins",
    "allowed_hosts",
    "allowed_private_networks",
    "run_expiry_s",
    "target",
    "timeout_s",
    "judge",
    "model",
    "local",
    "default",
]
WORDS = [
    "",
    "x",
    "qwen-max",
    "art-maestro",
    "function",
    "code_interpreter",
    "quark_search",
    "text_to_image",
    "search",
    "wanx",
    "plugin",
    "object",
    "string",
    "integer",
    "in_order",
    "local",
    "openai",
    "dashscope",
    "http://127.0.0.1:1/v1",
    "UNSET_VAR",
    "assistants",
    "(?i)x",
    "[unclosed",
    "{{ company }}",
    "{{ nope }}",
    "{% include 'tone.md.j2' %}",
    "{% include 'missing.j2' %}",
    "{% for %}",
    "{{ 1/0 }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ range(10**9) | list }}",
    "{% raw %}",
    "é",
    "\u0000",
    "\ufeff",
]
JINJA_FRAGMENTS = [
    "{{ company }}",
    "{{ region }}",
    "{{ missing }}",
    "{{ company | upper }}",
    "{{ company.x.y }}",
    "{{ 1 / 0 }}",
    "{{ 'a' * 3 }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ range(3) | list }}",
    "{% if company %}yes{% endif %}",
    "{% if %}",
    "{% for x in company %}{{ x }}{% endfor %}",
    "{% for %}",
    "{% include 'tone.md.j2' %}",
    "{% include 'nope.j2' %}",
    "{% include '../kit.yaml' %}",
    "{% include company %}",
    "{% import 'tone.md.j2' as t %}",
    "{% extends 'tone.md.j2' %}",
    "{% macro m() %}x{% endmacro %}{{ m() }}",
    "{% set x = 1 %}{{ x }}",
    "{% raw %}{{ x }}{% endraw %}",
    "{% raw %}",
    "{#",
    "#}",
    "{{",
    "}}",
    "{%",
    "%}",
    "\n",
    "  ",
    "text",
    "é",
]
YAML_FRAGMENTS = [
    "name: a\n",
    "model: m\n",
    "name: ",
    "model: ",
    "tools:\n",
    "tests:\n",
    "  - ",
    "- ",
    "  ",
    "    ",
    "\t",
    "\n",
    ": ",
    ":",
    "? ",
    "&a ",
    "*a",
    "&b [*a, *a]",
    "<<: *a\n",
    "<<: ",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!python/object:os.system ",
    "!custom ",
    "! ",
    "!<tag:yaml.org,2002:str> ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "{",
    "}",
    "[",
    "]",
    ",",
    "|\n",
    "|-\n",
    ">\n",
    "'",
    '"',
    '"\\x"',
    '"\\uD800"',
    "#",
    "@",
    "`",
    "0x1F",
    "0o17",
    "1e999",
    "-.inf",
    ".nan",
    "1_000",
    "2001-12-14t21:59:43.10-05:00",
    "2001-02-30",
    "~",
    "null",
    "yes",
    "on",
    "\ufeff",
    "\u2028",
    "\x85",
    "\x00",
    "\x07",
    "é",
    "\U0001f600",
    "instructions: |\n  {{ company }}\n",
    "instructions: ",
    "{{ x }}",
    "{% include 'tone.md.j2' %}",
]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from(WORDS)
    | st.text(max_size=12)
)


def _values(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(keys) | st.text(max_size=6) | st.sampled_from(SPEC_KEYS),
                inner,
                max_size=5,
            )
        ),
        max_leaves=25,
    )


inner_values = _values(INNER_KEYS)
kit_inner_values = _values(KIT_INNER_KEYS)

#: A top-level spec mapping: mostly the known keys, with random values.
spec_structures = st.dictionaries(
    st.sampled_from(SPEC_KEYS) | st.text(max_size=8), inner_values, max_size=10
)

#: A top-level kit.yaml mapping.
kit_structures = st.dictionaries(
    st.sampled_from(KIT_KEYS) | st.text(max_size=8), kit_inner_values, max_size=7
)

#: Random text in YAML's alphabet: fragments that mean something to a YAML parser, glued.
yaml_texts = st.lists(st.sampled_from(YAML_FRAGMENTS) | st.text(max_size=6), max_size=30).map(
    "".join
)

#: Instructions templates built from Jinja2 fragments.
templates = st.lists(st.sampled_from(JINJA_FRAGMENTS) | st.text(max_size=5), max_size=12).map(
    "".join
)

VALID_SPEC: dict[str, Any] = {
    "name": "fuzz-bot",
    "display_name": "Fuzz Bot",
    "model": "qwen-max",
    "description": "d",
    "instructions": "You work for {{ company }}.\n{% include 'tone.md.j2' %}\n",
    "tools": [
        "quark_search",
        {"type": "code_interpreter"},
        {
            "type": "function",
            "name": "get_order",
            "description": "Look an order up",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "integer"}},
                "required": ["id"],
            },
        },
        {"type": "plugin", "id": "weather", "auth": {"env": "WEATHER_TOKEN"}},
    ],
    "settings": {"temperature": 0.5, "top_p": 0.9, "top_k": 10, "max_tokens": 100},
    "metadata": {"team": "fuzz"},
    "vars": {"greeting": "hi"},
    "tests": [
        {
            "name": "looks up",
            "tags": ["smoke"],
            "repeat": 2,
            "min_pass": 1,
            "mocks": {"get_order": {"returns": {"status": "shipped"}}},
            "turns": [
                {
                    "user": "Where is order 42?",
                    "mocks": {
                        "get_order": {
                            "when": [{"args": {"id": {"regex": "^4"}}, "returns": "x"}],
                            "default": {"error": "nope"},
                        }
                    },
                    "expect": [
                        {"contains": "shipped"},
                        {"not": {"regex": "(?i)sorry"}},
                        {"tool_called": {"name": "get_order", "args": {"id": 42}}},
                        {"tool_sequence": {"calls": [{"name": "get_order"}], "order": "in_order"}},
                        {"json": {"schema": {"type": "object"}}},
                        {"max_latency_ms": 5000},
                    ],
                }
            ],
        }
    ],
}

VALID_KIT: dict[str, Any] = {
    "specs": "assistants",
    "partials": "assistants/partials",
    "vars": {"company": "Acme", "region": {"env": "FUZZ_REGION_UNSET"}},
    "default_target": "local",
    "targets": {
        "local": {"provider": "local"},
        "oai": {
            "provider": "openai",
            "base_url": "http://127.0.0.1:1/v1",
            "api_key_env": "OPENAI_API_KEY",
            "vars": {"company": "Other"},
        },
    },
    "server": {"models": {"default": {"backend": "scripted", "delay_ms": 0}}},
    "test": {"target": "local", "timeout_s": 5},
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a nested structure (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], values: st.SearchStrategy[Any]) -> Any:
    """``base`` with a few random edits: a value replaced, a key dropped, a key added."""
    doc = _copy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "drop", "add", "wrap"]))
        last = path[-1]
        if action == "replace":
            parent[last] = draw(values)
        elif action == "drop":
            del parent[last]
        elif action == "wrap":
            parent[last] = [parent[last]] if draw(st.booleans()) else {"x": parent[last]}
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(INNER_KEYS) | st.text(max_size=5))] = draw(values)
        else:
            parent.append(draw(values))
    return doc


def dump(value: Any, *, flow: bool | None = None, width: int = 80) -> str:
    """YAML text of a JSON-like value (PyYAML's safe dumper)."""
    return yaml.safe_dump(
        value, default_flow_style=flow, allow_unicode=True, sort_keys=False, width=width
    )


@st.composite
def dumped(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> str:
    value = draw(values)
    return dump(
        value,
        flow=draw(st.sampled_from([None, True, False])),
        width=draw(st.sampled_from([20, 80, 10_000])),
    )


@dataclass
class Outcome:
    """What one case did: ``"ok"`` (loaded), ``"spec"`` / ``"config"`` (refused as it should)."""

    kind: str
    detail: str = ""


class SpecCase:
    """A scratch project folder reused across cases; ``check`` runs one case through it."""

    SPEC_NAME = "fuzz.yaml"

    def __init__(self, root: Path | None = None) -> None:
        self._tmp = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kit-fuzz-")
            root = Path(self._tmp.name)
        self.root = root
        self.specs = root / "assistants"
        self.specs.mkdir(parents=True, exist_ok=True)
        partials = self.specs / "partials"
        partials.mkdir(exist_ok=True)
        (partials / "tone.md.j2").write_text("Be kind to {{ company }}.\n", encoding="utf-8")
        self.spec_file = self.specs / self.SPEC_NAME
        self.kit_file = root / "kit.yaml"

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def check(self, spec: str | bytes, kit: str | bytes | None = None) -> Outcome:
        """Run one spec (and optional kit.yaml) through parse, load, validate, render, payload.

        Raises ``AssertionError`` when anything but the kit's own errors escapes, or when an
        issue does not point at a real ``file:line:col``.
        """
        raw = spec.encode("utf-8", "surrogatepass") if isinstance(spec, str) else spec
        self.spec_file.write_bytes(raw)
        if kit is None:
            self.kit_file.unlink(missing_ok=True)
        else:
            self.kit_file.write_bytes(
                kit.encode("utf-8", "surrogatepass") if isinstance(kit, str) else kit
            )
        try:
            parse_yaml(raw, self.SPEC_NAME)
        except SpecError as exc:
            _check_issues(exc, {self.SPEC_NAME: raw})
        try:
            project = load_project([self.spec_file], cwd=self.root, environ={})
        except SpecError as exc:
            files = {str(self.spec_file): raw, f"assistants/{self.SPEC_NAME}": raw}
            _check_issues(exc, files, loose_files=True)
            return Outcome("spec", str(exc))
        except ConfigError as exc:
            text = str(exc)
            assert text.strip(), "a ConfigError without a message"
            if kit is not None and "kit.yaml:" in text:
                kit_raw = self.kit_file.read_bytes()
                for line in text.splitlines():
                    match = ISSUE_LINE.match(line)
                    assert match, f"kit.yaml issue without file:line:col: {line!r}"
                    _check_position(match, kit_raw)
            return Outcome("config", text)
        for assistant in project.specs:
            for dialect in ("dashscope", "openai"):
                body = assistant.to_payload(dialect)  # type: ignore[arg-type]
                assert body["model"] == assistant.model
                assistant.digest(dialect)  # type: ignore[arg-type]
        return Outcome("ok")


def _check_issues(exc: SpecError, files: dict[str, bytes], *, loose_files: bool = False) -> None:
    assert exc.issues, "a SpecError without issues"
    for issue in exc.issues:
        line = str(issue)
        match = ISSUE_LINE.match(line)
        assert match, f"issue not in file:line:col form: {line!r}"
        assert len(line.splitlines()) == 1, f"issue spans several lines: {line!r}"
        assert issue.message.strip(), f"issue without a message: {line!r}"
        raw = files.get(issue.file)
        if raw is None and loose_files:
            raw = next((v for k, v in files.items() if issue.file.endswith(k)), None)
        assert raw is not None, f"issue names an unexpected file: {line!r}"
        _check_position(match, raw)


def _check_position(match: re.Match[str], raw: bytes) -> None:
    line, col = int(match["line"]), int(match["col"])
    text = raw.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = _YAML_BREAKS.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    lines = lines or [""]
    # A position may sit one line past the end (end of stream), never further.
    assert line <= len(lines) + 1, f"line {line} is past the end ({len(lines)} lines): {match[0]!r}"
    if line <= len(lines):
        assert col <= len(lines[line - 1]) + 2, f"column {col} is past the end of line {line}"


def finite(value: Any) -> bool:
    """Whether a structure holds no NaN (NaN != NaN would confuse equality checks)."""
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return True
