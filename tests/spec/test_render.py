"""Instructions rendering: variable layers, includes, the sandbox, errors at template lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant_kit.errors import SpecError
from assistant_kit.spec.project import load_project
from assistant_kit.spec.render import Renderer

from .conftest import ProjectDir


def rendered(project_dir: ProjectDir, target: str | None = None, **env: str) -> str:
    project = load_project(target=target, environ=env)
    (spec,) = project.specs
    assert spec.instructions is not None
    return spec.instructions


def errors(project_dir: ProjectDir) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_project(environ={})
    return [str(i) for i in info.value.issues]


def test_vars_layer_kit_then_target_then_spec(project_dir: ProjectDir) -> None:
    project_dir.kit(
        "vars: {company: Acme, region: EU, tone: calm}\n"
        "targets:\n  staging: {provider: dashscope, vars: {region: CN, tone: brisk}}\n"
    )
    project_dir.spec(
        "a.yaml",
        "name: a\nmodel: m\ninstructions: '{{ company }}/{{ region }}/{{ tone }}'\nvars: {tone: "
        "warm}\n",
    )
    assert rendered(project_dir) == "Acme/EU/warm"
    assert rendered(project_dir, target="staging") == "Acme/CN/warm"


def test_env_vars_come_only_from_explicit_kit_yaml_mappings(project_dir: ProjectDir) -> None:
    project_dir.kit("vars:\n  region: {env: ACME_REGION}\n")
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: 'Region {{ region }}'\n")
    assert rendered(project_dir, ACME_REGION="eu-1") == "Region eu-1"


def test_an_unset_env_var_is_named_when_the_template_needs_it(project_dir: ProjectDir) -> None:
    project_dir.kit("vars:\n  region: {env: ACME_REGION}\n")
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: 'Region {{ region }}'\n")
    assert errors(project_dir) == [
        "assistants/a.yaml:3:15: undefined template variable `region`: kit.yaml maps it to the "
        "environment variable ACME_REGION, which is not set"
    ]


def test_an_unset_env_var_may_have_a_default_in_the_template(project_dir: ProjectDir) -> None:
    project_dir.kit("vars:\n  region: {env: ACME_REGION}\n")
    project_dir.spec(
        "a.yaml", "name: a\nmodel: m\ninstructions: 'Region {{ region | default(\"EU\") }}'\n"
    )
    assert rendered(project_dir) == "Region EU"


def test_other_environment_variables_are_not_visible(project_dir: ProjectDir) -> None:
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: '{{ HOME }}'\n")
    assert "undefined template variable `HOME`" in errors(project_dir)[0]


def test_undefined_variable_points_at_its_line_inside_the_block(project_dir: ProjectDir) -> None:
    project_dir.spec(
        "a.yaml",
        "name: a\nmodel: m\ninstructions: |\n  Line one.\n\n    Indented {{ missing }}.\nvars: "
        "{}\n",
    )
    assert errors(project_dir) == [
        "assistants/a.yaml:6:5: undefined template variable `missing`; define it in the spec's "
        "`vars`, the target's or kit.yaml's"
    ]


def test_folded_blocks_point_at_the_key_and_name_the_template_line(project_dir: ProjectDir) -> None:
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: >\n  one\n\n  {{ missing }}\n")
    assert errors(project_dir)[0].startswith(
        "assistants/a.yaml:3:1: undefined template variable `missing`"
    )
    assert errors(project_dir)[0].endswith("(template line 2)")


def test_includes_come_from_the_partials_folder(project_dir: ProjectDir) -> None:
    project_dir.partial("tone.md.j2", "Be {{ mood }}.\n")
    project_dir.spec(
        "a.yaml",
        'name: a\nmodel: m\ninstructions: |\n  Hi.\n  {% include "tone.md.j2" %}\nvars: {mood: '
        "kind}\n",
    )
    assert rendered(project_dir) == "Hi.\nBe kind."


def test_kit_yaml_can_move_the_partials_folder(project_dir: ProjectDir) -> None:
    project_dir.kit("partials: shared\n")
    (project_dir.root / "shared").mkdir()
    (project_dir.root / "shared" / "sig.j2").write_text("-- Acme")
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: '{% include \"sig.j2\" %}'\n")
    assert rendered(project_dir) == "-- Acme"


def test_a_missing_include_points_at_the_include_line(project_dir: ProjectDir) -> None:
    project_dir.partial("tone.md.j2", "x")
    project_dir.spec(
        "a.yaml", 'name: a\nmodel: m\ninstructions: |\n  Hi.\n  {% include "nowhere.j2" %}\n'
    )
    assert errors(project_dir) == [
        "assistants/a.yaml:5:3: include not found: `nowhere.j2` in assistants/partials/"
    ]


def test_includes_cannot_leave_the_partials_folder(project_dir: ProjectDir) -> None:
    project_dir.partial("tone.md.j2", "x")
    (project_dir.root / "secret.txt").write_text("do not read")
    project_dir.spec(
        "a.yaml", "name: a\nmodel: m\ninstructions: '{% include \"../../secret.txt\" %}'\n"
    )
    assert errors(project_dir) == [
        "assistants/a.yaml:3:15: include not found: `../../secret.txt` in assistants/partials/"
    ]


def test_an_error_inside_a_partial_names_the_partial(project_dir: ProjectDir) -> None:
    project_dir.partial("tone.md.j2", "line one\n{{ nope }}\n")
    project_dir.spec(
        "a.yaml", 'name: a\nmodel: m\ninstructions: |\n  Hi.\n  {% include "tone.md.j2" %}\n'
    )
    (message,) = errors(project_dir)
    assert message.startswith("assistants/a.yaml:5:3: undefined template variable `nope`")
    assert message.endswith("(in partial `tone.md.j2` line 2)")


def test_a_syntax_error_points_at_its_line(project_dir: ProjectDir) -> None:
    project_dir.spec(
        "a.yaml", "name: a\nmodel: m\ninstructions: |\n  Hi.\n  {{ name | }}\n  Bye.\n"
    )
    (message,) = errors(project_dir)
    assert message.startswith("assistants/a.yaml:5:3: template syntax error:")


def test_the_sandbox_refuses_unsafe_attributes(project_dir: ProjectDir) -> None:
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: \"{{ ''.__class__.__mro__ }}\"\n")
    (message,) = errors(project_dir)
    assert message.startswith("assistants/a.yaml:3:15: template error:")
    assert "unsafe" in message


def test_rendered_instructions_over_the_limit_are_refused(project_dir: ProjectDir) -> None:
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: \"{{ 'x' * 32769 }}\"\n")
    assert errors(project_dir) == [
        "assistants/a.yaml:3:1: `instructions`: rendered text is too long: 32,769 characters "
        "(at most 32,768)"
    ]
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: \"{{ 'x' * 32768 }}\"\n")
    assert len(rendered(project_dir)) == 32_768


def test_the_template_source_is_kept_beside_the_rendered_text(project_dir: ProjectDir) -> None:
    project_dir.spec(
        "a.yaml", "name: a\nmodel: m\ninstructions: 'Hi {{ who }}'\nvars: {who: you}\n"
    )
    (spec,) = load_project().specs
    assert (spec.template, spec.instructions) == ("Hi {{ who }}", "Hi you")


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{{ 'x' * 10**8 }}", id="huge-repeat"),
        pytest.param("{% for i in range(90000) %}{{ 'y' * 50 }}{% endfor %}", id="long-loop"),
    ],
)
def test_runaway_templates_stop_early_and_report_the_limit(
    project_dir: ProjectDir, template: str
) -> None:
    project_dir.spec("a.yaml", f'name: a\nmodel: m\ninstructions: "{template}"\n')
    (message,) = errors(project_dir)
    assert message.startswith(
        "assistants/a.yaml:3:1: `instructions`: rendered text is too long: more than"
    )
    assert message.endswith("(at most 32,768)")


def test_huge_exponents_are_refused(project_dir: ProjectDir) -> None:
    project_dir.spec("a.yaml", 'name: a\nmodel: m\ninstructions: "{{ 10 ** 100000 }}"\n')
    (message,) = errors(project_dir)
    assert message == (
        "assistants/a.yaml:3:15: template refused: 10 ** 100000 is too large (over 10,000 bits)"
    )


SIMPLE_TEMPLATES = [
    "plain text, no template at all\n",
    "Hi {{ who }}.\nBye {{ who }}!\n\n",
    "{{ n }} {{ f }} {{ b }} {{ nothing }} {{ items }} {{ table }} {{ text }}",
    '{% include "part.j2" %}',
    'Top\n{% include "part.j2" %}\nBottom {{ who }}\n',
    "{{- who -}}\n   {{ who }}  ",
    "{# a comment #}{{ who }}{% raw %}{{ literal }}{% endraw %}",
]
VALUES = {
    "who": "Zoë",
    "n": 3,
    "f": 0.5,
    "b": True,
    "nothing": None,
    "items": [1, "a"],
    "table": {"k": "v"},
    "text": "<b>not escaped</b>",
}


@pytest.mark.parametrize("source", SIMPLE_TEMPLATES)
def test_simple_templates_render_exactly_as_jinja2_does(tmp_path: Path, source: str) -> None:
    (tmp_path / "part.j2").write_text("Partial for {{ who }}.\n")
    renderer = Renderer(tmp_path)
    fast = renderer._render_simple(source, VALUES)
    assert fast is not None
    assert fast == renderer.env.from_string(source).render(**VALUES)


@pytest.mark.parametrize(
    "source",
    [
        "{{ who.upper() }}",
        "{{ who | upper }}",
        "{% if b %}x{% endif %}",
        "{{ missing }}",
        '{% include "nowhere.j2" %}',
        '{% include "bad.j2" %}',
        "{% for i in items %}{{ i }}{% endfor %}",
    ],
)
def test_anything_else_takes_the_full_engine(tmp_path: Path, source: str) -> None:
    (tmp_path / "bad.j2").write_text("{{ missing }}")
    assert Renderer(tmp_path)._render_simple(source, VALUES) is None
