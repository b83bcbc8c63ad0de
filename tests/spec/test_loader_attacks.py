"""The spec loader under attack (issue 13, item 5): template bombs, links out of the project,
files that are not files, numbers JSON cannot carry, keys no header can carry.

Each test is an attack that hung, exhausted memory, leaked a file or crashed before the fix.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from assistant_kit.cli import main
from assistant_kit.errors import ConfigError, SpecError
from assistant_kit.spec.project import load_project
from spec.conftest import ProjectDir

SECRET_LINE = "root:$6$kit-shadow-sentinel$abcdef:19000:0:99999:7:::"


def errors(project_dir: ProjectDir) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_project(environ={})
    return [str(i) for i in info.value.issues]


def one_template_error(project_dir: ProjectDir, template: str) -> str:
    project_dir.spec("a.yaml", f"name: a\nmodel: m\ninstructions: |\n  {template}\n")
    started = time.monotonic()
    (message,) = errors(project_dir)
    assert time.monotonic() - started < 30  # refused, not run to the end (which takes hours)
    return message


@pytest.mark.parametrize(
    ("template", "words"),
    [
        pytest.param(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            "loops ran more than 100,000 steps",
            id="nested-range",
        ),
        pytest.param(
            "{% for a in 'x' * 100000 %}{% for b in 'y' * 100000 %}{% endfor %}{% endfor %}",
            "loops ran more than 100,000 steps",
            id="nested-loops-over-text",
        ),
        pytest.param("{{ (10 ** 64) ** 64 ** 64 }}", "is too large", id="chained-power"),
        pytest.param("{{ ((10 ** 64) ** 64) ** 64 }}", "is too large", id="power-of-power"),
        pytest.param("{{ 'x'.ljust(2000000000) }}", "too large", id="ljust"),
        pytest.param("{{ 'x'.center(2000000000) }}", "too large", id="center-method"),
        pytest.param("{{ 'x' | center(2000000000) }}", "too large", id="center-filter"),
        pytest.param("{{ '{:>2000000000}'.format('x') }}", "too large", id="format-width"),
        pytest.param("{{ '%2000000000s' | format('x') }}", "too large", id="format-filter"),
        pytest.param("{{ '%*s' % (2000000000, 'x') }}", "too large", id="percent-width"),
        pytest.param("{{ '{:>{}}'.format('x', 2000000000) }}", "too large", id="nested-width"),
        pytest.param("{{ '%.2000000000f' % 1.5 }}", "too large", id="percent-precision"),
        pytest.param("{{ ('a\\n' * 60000) | indent(100000) }}", "too large", id="indent"),
        pytest.param("{{ [1] | batch(2000000000, 'x') | list }}", "too large", id="batch"),
        pytest.param(
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "a `~` joined text",
            id="tilde-doubling",
        ),
        pytest.param(
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}",
            "too large",
            id="plus-doubling",
        ),
        pytest.param(
            "{% set ns = namespace(s=['x' * 100000]) %}{% for i in range(20) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | join('') | length }}",
            "too large",
            id="join-of-a-huge-list",
        ),
        pytest.param(
            "{{ ('x' * 100000) | replace('x', 'y' * 100000) }}", "too large", id="replace"
        ),
        pytest.param(
            "{% set l = ['x'] %}{% for i in range(40) %}{% set _ = l.extend(l) %}{% endfor %}",
            "a list, dict or set",
            id="list-extend-doubling",
        ),
        pytest.param("{{ 10 | round(-2000000000) }}", "too large", id="round-to-huge-digits"),
        pytest.param(
            "{{ '{a:>2000000000}'.format_map({'a': 'x'}) }}", "too large", id="format-map-width"
        ),
        pytest.param(
            "{{ ('x' * 100000).translate({120: 'y' * 100000}) }}", "too large", id="translate"
        ),
        pytest.param("{{ 'x'.encode().ljust(2000000000) }}", "too large", id="bytes-ljust"),
        pytest.param(
            "{% for x in [0] recursive %}{% if x < 60 %}{{ loop([x + 1, x + 1]) }}{% endif %}"
            "{% endfor %}",
            "rendering took longer than",
            id="recursive-loop-fanout",
        ),
        pytest.param(
            "{% macro f(n) %}{% if n < 60 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}"
            "{{ f(0) }}",
            "rendering took longer than",
            id="macro-fanout",
        ),
    ],
)
def test_template_bombs_are_refused(project_dir: ProjectDir, template: str, words: str) -> None:
    message = one_template_error(project_dir, template)
    assert message.startswith("assistants/a.yaml:4:3: template refused: "), message
    assert words in message


def test_a_slow_template_stops_at_the_time_budget(
    project_dir: ProjectDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("assistant_kit.spec.sandbox.RENDER_TIME_S", 0.2)
    message = one_template_error(
        project_dir, "{% for a in range(99999) %}{{ (7 ** 3000) % 1000 }}{% endfor %}"
    )
    assert message.endswith("template refused: rendering took longer than 0.2 s; refused")


def test_lipsum_is_not_available(project_dir: ProjectDir) -> None:
    message = one_template_error(project_dir, "{{ lipsum(100000) }}")
    assert "undefined template variable `lipsum`" in message


def test_ordinary_templates_still_render(project_dir: ProjectDir) -> None:
    project_dir.partial("tone.md.j2", "Be {{ tone }}.")
    project_dir.spec(
        "a.yaml",
        "name: a\nmodel: m\nvars: {tone: calm, items: [a, b]}\ninstructions: |\n"
        "  {% for i in items %}{{ loop.index }}. {{ i | upper ~ '!' }} {% endfor %}\n"
        "  {{ 'x'.ljust(3, '.') }}|{{ '%5s' % 'y' }}|{{ 2 ** 10 }}|{{ ', '.join(items) }}\n"
        "  {{ 'Order 123456789: %s' % 987654321 }} {{ '%d items' | format(2000000000) }}\n"
        "  {{ 'Order 123456789: {}'.format(987654321) }} {{ '{:>4}'.format(7) }}\n"
        '  {% include "tone.md.j2" %}\n',
    )
    (spec,) = load_project(environ={}).specs
    assert spec.instructions == (
        "1. A! 2. B! \nx..|    y|1024|a, b\n"
        "Order 123456789: 987654321 2000000000 items\n"
        "Order 123456789: 987654321    7\nBe calm."
    )


# -- files: links out of the project, devices, FIFOs ----------------------------------------


@pytest.fixture
def shadow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file outside the project standing in for /etc/shadow."""
    path = tmp_path_factory.mktemp("etc") / "shadow"
    path.write_text(f"{SECRET_LINE}\nname: x\n", encoding="utf-8")
    return path


def test_a_partial_linked_outside_the_partials_folder_is_not_included(
    project_dir: ProjectDir, shadow: Path
) -> None:
    project_dir.partial("tone.md.j2", "calm")
    (project_dir.root / "assistants" / "partials" / "passwd.j2").symlink_to(shadow)
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: '{% include \"passwd.j2\" %}'\n")
    (message,) = errors(project_dir)
    assert message == (
        "assistants/a.yaml:3:1: template refused: partial `passwd.j2`: it is a link to a file "
        "outside the project; refused"
    )


def test_a_partial_linked_to_etc_passwd_is_not_included(project_dir: ProjectDir) -> None:
    project_dir.partial("tone.md.j2", "calm")
    (project_dir.root / "assistants" / "partials" / "passwd.j2").symlink_to("/etc/passwd")
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: '{% include \"passwd.j2\" %}'\n")
    (message,) = errors(project_dir)
    assert "outside the project; refused" in message
    assert "root:" not in message


def test_a_partial_linked_inside_the_partials_folder_is_included(project_dir: ProjectDir) -> None:
    real = project_dir.partial("tone.md.j2", "calm")
    (real.parent / "alias.j2").symlink_to(real)
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: '{% include \"alias.j2\" %}'\n")
    (spec,) = load_project(environ={}).specs
    assert spec.instructions == "calm"


def test_a_spec_linked_to_a_file_outside_the_project_is_refused_unread(
    project_dir: ProjectDir, shadow: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir.root / "assistants" / "a.yaml").symlink_to(shadow)
    assert errors(project_dir) == [
        "assistants/a.yaml:1:1: it is a link to a file outside the project; refused"
    ]
    with pytest.raises(SystemExit) as info:
        main(["validate"])
    out, err = capsys.readouterr()
    assert info.value.code == 1
    assert "kit-shadow-sentinel" not in out + err


def test_a_spec_named_on_the_command_line_that_links_out_is_refused(
    project_dir: ProjectDir, shadow: Path
) -> None:
    link = project_dir.root / "assistants" / "a.yaml"
    link.symlink_to(shadow)
    with pytest.raises(SpecError) as info:
        load_project([str(link)], environ={})
    assert [i.message for i in info.value.issues] == [
        "it is a link to a file outside the project; refused"
    ]


def test_a_spec_that_is_dev_zero_is_refused_unread(project_dir: ProjectDir) -> None:
    (project_dir.root / "assistants" / "zero.yaml").symlink_to("/dev/zero")
    (message,) = errors(project_dir)
    assert message.startswith("assistants/zero.yaml:1:1: ")
    assert "refused" in message


def test_a_device_inside_the_project_is_refused_unread(
    project_dir: ProjectDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    # allowed folders include /dev here, so what refuses it is its kind, not its place
    (project_dir.root / "assistants" / "zero.yaml").symlink_to("/dev/zero")
    with pytest.raises(SpecError) as info:
        load_project([str(project_dir.root / "assistants"), "/dev"], environ={})
    assert [i.message for i in info.value.issues] == [
        "not a regular file (a device, FIFO, socket or folder); refused"
    ]


def test_a_fifo_spec_is_refused_without_waiting(project_dir: ProjectDir) -> None:
    os.mkfifo(project_dir.root / "assistants" / "pipe.yaml")
    started = time.monotonic()
    assert errors(project_dir) == [
        "assistants/pipe.yaml:1:1: not a regular file (a device, FIFO, socket or folder); refused"
    ]
    assert time.monotonic() - started < 10  # opening a FIFO for reading would block forever


def test_a_kit_yaml_linked_outside_the_project_is_refused(
    project_dir: ProjectDir, shadow: Path
) -> None:
    (project_dir.root / "kit.yaml").symlink_to(shadow)
    with pytest.raises(ConfigError) as info:
        load_project(environ={})
    assert "outside the project; refused" in str(info.value)
    assert "kit-shadow-sentinel" not in str(info.value)


# -- numbers and keys -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN", "1.0e+400"])
def test_non_finite_numbers_are_refused_at_validate_time(
    project_dir: ProjectDir, value: str
) -> None:
    project_dir.spec("a.yaml", f"name: a\nmodel: m\nsettings: {{temperature: {value}}}\n")
    assert errors(project_dir) == [
        f"assistants/a.yaml:3:25: `{value}` is not a finite number (JSON, and so every API, "
        "has no NaN or Infinity)"
    ]


@pytest.mark.parametrize("key", ["ключ-123456", "sk-abc\ndef", "sk-\u00e9t\u00e9"])
def test_a_target_key_no_header_can_carry_is_a_clear_usage_error(
    project_dir: ProjectDir,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
) -> None:
    project_dir.kit(
        "targets:\n  remote: {provider: openai, base_url: 'http://127.0.0.1:9/v1', "
        "api_key_env: KIT_TEST_REMOTE_KEY}\n"
    )
    project_dir.spec("a.yaml", "name: a\nmodel: m\n")
    monkeypatch.setenv("KIT_TEST_REMOTE_KEY", key)
    with pytest.raises(SystemExit) as info:
        main(["plan", "--target", "remote"])
    out, err = capsys.readouterr()
    assert info.value.code == 2
    assert "Traceback" not in out + err
    assert (
        "target `remote`: the API key in KIT_TEST_REMOTE_KEY holds non-ASCII or control "
        "characters, which an HTTP header cannot carry; check the variable"
    ) in err
