"""load_project(): kit.yaml discovery, defaults, targets, and all issues from all files at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant_kit.errors import ConfigError, SpecError
from assistant_kit.spec import project as project_module
from assistant_kit.spec.project import load_project

from .conftest import ProjectDir

REPO = Path(__file__).resolve().parent.parent.parent


def test_without_kit_yaml_specs_live_in_assistants_with_one_local_target(
    project_dir: ProjectDir,
) -> None:
    project_dir.spec("b.yaml", "name: b\nmodel: m\n")
    project_dir.spec("a.yml", "name: a\nmodel: m\n")
    project = load_project()
    assert [s.name for s in project.specs] == ["a", "b"]
    assert list(project.targets) == ["local"]
    assert project.target.name == "local" and project.target.embedded
    assert project.config_file is None
    assert project.config["server"] == {} and project.config["test"] == {}


def test_no_spec_folder_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=re.escape("no kit.yaml and no `assistants/` folder here")
    ):
        load_project()


def test_kit_yaml_is_found_upward_from_the_working_directory(
    project_dir: ProjectDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir.kit("specs: bots\nvars: {x: 1}\n")
    (project_dir.root / "bots" / "deep").mkdir(parents=True)
    (project_dir.root / "bots" / "a.yaml").write_text("name: a\nmodel: m\n")
    monkeypatch.chdir(project_dir.root / "bots" / "deep")
    project = load_project()
    assert project.root == project_dir.root.resolve()
    assert [s.name for s in project.specs] == ["a"]


def test_paths_narrow_the_specs_and_find_kit_yaml_above_them(
    project_dir: ProjectDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir.kit("vars: {company: Acme}\n")
    project_dir.spec("a.yaml", "name: a\nmodel: m\ninstructions: '{{ company }}'\n")
    project_dir.spec("b.yaml", "name: b\nmodel: m\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    project = load_project([project_dir.root / "assistants" / "a.yaml"])
    assert [(s.name, s.instructions) for s in project.specs] == [("a", "Acme")]
    assert [s.name for s in load_project([project_dir.root]).specs] == ["a", "b"]


def test_a_missing_path_is_a_config_error(project_dir: ProjectDir) -> None:
    with pytest.raises(ConfigError, match=re.escape("no such file or folder: nope.yaml")):
        load_project(["nope.yaml"])


def test_targets_and_sections_are_exposed(project_dir: ProjectDir) -> None:
    project_dir.kit(
        "default_target: staging\n"
        "targets:\n"
        "  staging: {provider: dashscope, base_url: 'https://ds.example/api/v1', api_key_env: "
        "DS_KEY}\n"
        "  oai: {provider: openai, base_url: 'http://127.0.0.1:8900/v1', api_key_env: OAI_KEY}\n"
        "  serve: {provider: local, base_url: 'http://127.0.0.1:8900/api/v1', dialect: dashscope}\n"
        "server:\n  models:\n    default: {backend: llama-cpp, seed: 0}\n  run_expiry_s: 60\n"
        "test: {timeout_s: 30, judge: {model: qwen-max}}\n"
    )
    project_dir.spec("a.yaml", "name: a\nmodel: m\n")
    project = load_project()
    assert sorted(project.targets) == ["local", "oai", "serve", "staging"]
    staging = project.target
    assert (staging.name, staging.provider, staging.dialect) == (
        "staging",
        "dashscope",
        "dashscope",
    )
    assert staging.base_url == "https://ds.example/api/v1"
    assert staging.api_key({"DS_KEY": "k"}) == "k" and staging.api_key({}) is None
    assert project.targets["oai"].dialect == "openai"
    assert project.targets["serve"].dialect == "dashscope" and not project.targets["serve"].embedded
    assert project.targets["local"].embedded
    assert project.server == {
        "models": {"default": {"backend": "llama-cpp", "seed": 0}},
        "run_expiry_s": 60,
    }
    assert project.test == {"timeout_s": 30, "judge": {"model": "qwen-max"}}
    assert load_project(target="local").target.name == "local"


def test_an_unknown_target_is_a_config_error_with_a_suggestion(project_dir: ProjectDir) -> None:
    project_dir.kit("targets:\n  staging: {provider: dashscope}\n")
    project_dir.spec("a.yaml", "name: a\nmodel: m\n")
    with pytest.raises(
        ConfigError, match=re.escape("unknown target `stagign`; did you mean `staging`?")
    ):
        load_project(target="stagign")


def test_kit_yaml_problems_are_config_errors_with_positions(project_dir: ProjectDir) -> None:
    project_dir.kit("specs: assistants\ntargetz: {}\n")
    with pytest.raises(ConfigError) as info:
        load_project()
    assert str(info.value) == "kit.yaml:2:1: unknown key `targetz`; did you mean `targets`?"


def test_every_target_kit_yaml_names_must_be_defined(project_dir: ProjectDir) -> None:
    project_dir.kit(
        "default_target: stagin\n"
        "targets: {staging: {provider: local}}\n"
        "test: {target: nowhere, judge: {target: local, model: m}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_project(target="local")
    assert str(info.value).splitlines() == [
        "kit.yaml:1:17: `default_target`: unknown target `stagin`; did you mean `staging`?",
        "kit.yaml:3:16: `test.target`: unknown target `nowhere`; targets: local, staging",
    ]


def test_kit_yaml_beside_the_specs_is_not_read_as_a_spec(project_dir: ProjectDir) -> None:
    project_dir.kit("specs: .\n")
    (project_dir.root / "a.yaml").write_text("name: a\nmodel: m\n", encoding="utf-8")
    assert [s.name for s in load_project().specs] == ["a"]
    assert [s.name for s in load_project(["kit.yaml", "a.yaml"]).specs] == ["a"]


def test_a_broken_kit_yaml_is_a_config_error(project_dir: ProjectDir) -> None:
    project_dir.kit("a: 1\na: 2\n")
    with pytest.raises(ConfigError, match=re.escape("kit.yaml:2:1: duplicate key `a`")):
        load_project()


@pytest.mark.parametrize("source", ["", "# only comments\n"])
def test_an_empty_kit_yaml_means_every_default(project_dir: ProjectDir, source: str) -> None:
    project_dir.kit(source)
    project_dir.spec("a.yaml", "name: a\nmodel: m\n")
    project = load_project()
    assert [s.name for s in project.specs] == ["a"]
    assert list(project.targets) == ["local"] and project.target.embedded


def test_all_issues_of_all_files_come_at_once_sorted(project_dir: ProjectDir) -> None:
    project_dir.spec("b.yaml", "name: b\n")
    project_dir.spec("a.yaml", "name: a\nmodel: m\nbogus: 1\ninstructions: '{{ x }}'\n")
    project_dir.spec("c.yaml", "name: c\n\tmodel: m\n")
    project_dir.spec("ok.yaml", "name: ok\nmodel: m\n")
    with pytest.raises(SpecError) as info:
        load_project()
    assert [str(i) for i in info.value.issues] == [
        "assistants/a.yaml:3:1: unknown key `bogus`; expected one of: name, display_name, model, "
        "description, instructions, tools, settings, metadata, vars, tests",
        "assistants/b.yaml:1:1: missing required key `model`",
        "assistants/c.yaml:2:1: tab character in indentation: YAML indents with spaces only",
    ]


def test_two_files_with_one_name_report_both_places(project_dir: ProjectDir) -> None:
    project_dir.spec("one.yaml", "name: twin\nmodel: m\n")
    project_dir.spec("two.yaml", "# the other\nname: twin\nmodel: n\n")
    with pytest.raises(SpecError) as info:
        load_project()
    assert [str(i) for i in info.value.issues] == [
        "assistants/one.yaml:1:1: assistant name `twin` is also declared in assistants/two.yaml:2",
        "assistants/two.yaml:2:1: assistant name `twin` is also declared in assistants/one.yaml:1",
    ]


def test_spec_lookup_by_name_suggests_close_names(project_dir: ProjectDir) -> None:
    project_dir.spec("a.yaml", "name: art-maestro\nmodel: m\n")
    project = load_project()
    assert project.spec("art-maestro").model == "m"
    with pytest.raises(ConfigError, match="did you mean `art-maestro`"):
        project.spec("art-mastro")


def test_specs_remember_their_file_and_lines(project_dir: ProjectDir) -> None:
    project_dir.spec(
        "a.yaml",
        "# c\nname: a\nmodel: m\ntests:\n  - name: t\n    turns:\n      - user: hi\n        "
        "expect: [{contains: x}]\n",
    )
    (spec,) = load_project().specs
    assert (spec.file, spec.line) == ("assistants/a.yaml", 2)
    (case,) = spec.tests
    assert (case.file, case.line, case.turns[0].line, case.turns[0].expect[0].line) == (
        "assistants/a.yaml",
        5,
        7,
        8,
    )


def test_the_example_project_is_valid() -> None:
    project = load_project(cwd=REPO, environ={})
    assert [s.name for s in project.specs] == [
        "art-maestro",
        "data-analyst",
        "geography-tutor",
        "order-desk",
    ]
    art = project.spec("art-maestro")
    assert art.to_payload("dashscope")["tools"] == [
        {"type": "quark_search"},
        {"type": "text_to_image"},
    ]
    order = project.spec("order-desk")
    functions = {t.name for t in order.tools if t.type == "function"}
    assert functions == {"get_order_status", "cancel_order"}
    assert any(t.mocks for t in order.tests)
    assert any(t.type == "code_interpreter" for t in project.spec("data-analyst").tools)
    smoke = [t for s in project.specs for t in s.tests if "smoke" in t.tags]
    assert [t.turns[0].user for t in smoke] == [
        "What is the capital of France?",
        "What is the capital of Japan?",
        "What is the largest ocean on Earth?",
        "What is the longest river in Africa?",
    ]
    assert not project.spec("geography-tutor").tools  # a small model's tests: no tools to misuse
    ragdoll = art.test("draws a ragdoll cat")
    assert ragdoll.turns[0].user == "Please help me draw a picture of a ragdoll cat."
    assert "strong-model" in ragdoll.tags


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_forked_workers_give_the_same_result_as_one_process(
    project_dir: ProjectDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project_module, "PARALLEL_MIN_FILES", 4)
    for i in range(6):
        project_dir.spec(f"ok{i}.yaml", f"name: ok{i}\nmodel: m\ninstructions: 'n{{{{ {i} }}}}'\n")
    project_dir.spec("bad.yaml", "name: bad\n")
    project_dir.spec("twin.yaml", "name: ok1\nmodel: m\n")
    with pytest.raises(SpecError) as serial:
        load_project(jobs=1)
    with pytest.raises(SpecError) as forked:
        load_project(jobs=2)
    assert forked.value.issues == serial.value.issues
    assert len(serial.value.issues) == 3
    (project_dir.root / "assistants" / "bad.yaml").unlink()
    (project_dir.root / "assistants" / "twin.yaml").unlink()
    assert load_project(jobs=2).specs == load_project(jobs=1).specs
    assert [s.instructions for s in load_project(jobs=2).specs] == [f"n{i}" for i in range(6)]


def test_an_env_mapping_in_kit_yaml_must_name_a_variable(project_dir: ProjectDir) -> None:
    project_dir.kit("vars:\n  region: {env: [A]}\n")
    project_dir.spec("a.yaml", "name: a\nmodel: m\n")
    with pytest.raises(ConfigError) as info:
        load_project()
    assert str(info.value) == "kit.yaml:2:17: `vars.region.env`: must be a string, not a list"
